"""Fixes that make python-wechaty 0.10.7 work on Python 3.11 against a Wechaty 1.x puppet-service gateway.

Call `apply()` before using wechaty: it patches, then imports wechaty. Besides the Wechaty transport this is
the only module that imports wechaty. pyee<12 and urllib3<2 are pinned in pyproject.toml instead of patched.
Each fix is a small function with a one-line reason; tests/transport/test_wechaty_transport.py checks every one.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

import betterproto

# Same number as file-box's FileBoxType.Uuid; python's FileBoxType stops at 6.
UUID_BOX_TYPE = 7
DOWNLOAD_ROUTE = "/wechaty.Puppet/Download"
PATCH_MARK = "_relaybot_compat"
# Where a message payload keeps its TypeScript type number when the python client cannot name it (see
# _fix_message_type_map); read it with original_message_type().
ORIGINAL_TYPE_ATTRIBUTE = "_relaybot_original_type"

_applied = False


@dataclass(eq=False, repr=False)
class DownloadRequest(betterproto.Message):
    """Request of the streaming Download RPC (wechaty-grpc 1.x download-upload.proto)."""

    id: str = betterproto.string_field(1)


@dataclass(eq=False, repr=False)
class DownloadResponse(betterproto.Message):
    """One chunk of a Download stream."""

    chunk: bytes = betterproto.bytes_field(1)


def apply() -> None:
    """Apply every fix once; safe to call any number of times."""
    global _applied
    if _applied:
        return
    with warnings.catch_warnings():
        # Fix 10: the libraries import telnetlib, deprecated on 3.11; `-W error` would break the import.
        warnings.simplefilter("ignore", DeprecationWarning)
        _fix_pyee_deprecated_name()
        import wechaty_puppet  # noqa: F401  (its import creates the library loggers fixed below)

        _fix_library_logging()
        _fix_puppet_options_hashable()
        _fix_file_box_json()
        _fix_file_box_mime_type()
        _fix_value_fields()
        _fix_puppet_service()
        _fix_message_type_map()
        _import_wechaty_without_cwd_cache()
        _fix_library_logging()
    _fix_room_force_sync()
    _fix_url_link_create()
    _fix_shared_pools()
    _applied = True


def _mark(function: Any) -> Any:
    setattr(function, PATCH_MARK, True)
    return function


def _fix_pyee_deprecated_name() -> None:
    """Fix 1, beside the pyee<12 pin: pyee 11's pyee.AsyncIOEventEmitter warns on every instance."""
    import pyee
    import pyee.asyncio

    # The libraries bind the name at import, so it must point at the real class before they load.
    pyee.AsyncIOEventEmitter = pyee.asyncio.AsyncIOEventEmitter  # type: ignore[misc, assignment]  # rebinding the alias, on purpose


def _fix_library_logging() -> None:
    """Library loggers print INFO on handlers of their own, and one warning prints the token: route them to ours."""
    import wechaty_puppet
    import wechaty_puppet.logger

    if not getattr(wechaty_puppet.logger.get_logger, PATCH_MARK, False):
        original = wechaty_puppet.logger.get_logger

        @_mark
        def get_logger(name: str | None = None, file: str | None = None) -> logging.Logger:
            return _quiet(original(name, file))

        # Modules imported from here on bind the patched function; earlier ones are swept below.
        wechaty_puppet.logger.get_logger = get_logger
        wechaty_puppet.get_logger = get_logger
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and any(_is_library_handler(h) for h in logger.handlers):
            _quiet(logger)


def _quiet(logger: logging.Logger) -> logging.Logger:
    logger.handlers = []
    logger.propagate = True
    logger.setLevel(logging.WARNING)
    if not any(getattr(f, PATCH_MARK, False) for f in logger.filters):
        logger.addFilter(_mark(_drop_token_warning))
    return logger


def _is_library_handler(handler: logging.Handler) -> bool:
    fmt = getattr(handler.formatter, "_fmt", "")
    return fmt == "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def _drop_token_warning(record: logging.LogRecord) -> bool:
    # PuppetService warns "there are endpoint<...> and token<...>" on every start.
    return not (record.name == "PuppetService" and str(record.msg).startswith("there are "))


def _fix_puppet_options_hashable() -> None:
    """Fix 3: 3.11 dataclasses reject WechatyOptions' unhashable PuppetOptions default at import."""
    from wechaty_puppet.schemas.puppet import PuppetOptions

    # Hashable by identity: the shared class-level default is never used, callers pass a fresh one.
    PuppetOptions.__hash__ = object.__hash__


def _fix_file_box_json() -> None:
    """Fixes 4 and 6: 1.x FileBox JSON names the fields `type`/`url`, python uses `boxType`/`remoteUrl`."""
    from wechaty_puppet import FileBox

    if getattr(FileBox.to_json_str, PATCH_MARK, False):
        return
    original_from_json = FileBox.from_json.__func__
    original_to_json_str = FileBox.to_json_str

    @_mark
    def from_json(cls: type, obj: str | dict) -> Any:
        data = json.loads(obj) if isinstance(obj, str) else dict(obj)
        if "boxType" not in data and "type" in data:
            data["boxType"] = data["type"]
        if "remoteUrl" not in data and "url" in data:
            data["remoteUrl"] = data["url"]
        if data.get("boxType") == UUID_BOX_TYPE:
            raise ValueError("a UUID FileBox must be fetched with the Download RPC (see fetch_file_box)")
        return original_from_json(cls, data)

    @_mark
    def to_json_str(self: Any) -> str:
        data = json.loads(original_to_json_str(self))
        data.setdefault("type", data.get("boxType"))
        if data.get("remoteUrl"):
            data.setdefault("url", data["remoteUrl"])
        return json.dumps(data)

    FileBox.from_json = classmethod(from_json)
    FileBox.to_json_str = to_json_str


def _fix_file_box_mime_type() -> None:
    """FileBox.mimeType calls the deprecated Logger.warn on every file sent: a DeprecationWarning (error under -W)."""
    from wechaty_puppet import FileBox

    def get(self: Any) -> Any:
        return self.mediaType

    def set_(self: Any, value: Any) -> None:
        self.mediaType = value

    FileBox.mimeType = property(_mark(get), set_)


def _fix_value_fields() -> None:
    """Fix 7: wechaty-grpc 1.x moved alias/topic/announce values to plain strings (request 3, response 2)."""
    from wechaty_grpc.wechaty import puppet as pb

    if getattr(pb.RoomTopicRequest, PATCH_MARK, False):
        return

    # The stubs look these classes up in the module on every call, so replacing them is enough.
    @dataclass(eq=False, repr=False)
    class ContactAliasRequest(betterproto.Message):
        id: str = betterproto.string_field(1)
        alias: str = betterproto.string_field(3)

    @dataclass(eq=False, repr=False)
    class ContactAliasResponse(betterproto.Message):
        alias: str = betterproto.string_field(2)

    @dataclass(eq=False, repr=False)
    class RoomTopicRequest(betterproto.Message):
        id: str = betterproto.string_field(1)
        topic: str = betterproto.string_field(3)

    @dataclass(eq=False, repr=False)
    class RoomTopicResponse(betterproto.Message):
        topic: str = betterproto.string_field(2)

    @dataclass(eq=False, repr=False)
    class RoomAnnounceRequest(betterproto.Message):
        id: str = betterproto.string_field(1)
        text: str = betterproto.string_field(3)

    @dataclass(eq=False, repr=False)
    class RoomAnnounceResponse(betterproto.Message):
        text: str = betterproto.string_field(2)

    # An empty string is proto3's default and is not sent, so setting '' reads instead of clearing.
    replacements = [
        ContactAliasRequest,
        ContactAliasResponse,
        RoomTopicRequest,
        RoomTopicResponse,
        RoomAnnounceRequest,
        RoomAnnounceResponse,
    ]
    for cls in replacements:
        setattr(pb, cls.__name__, _mark(cls))


async def download(puppet: Any, uuid: str) -> bytes:
    """Fetch the bytes behind a UUID FileBox with the streaming Download RPC."""
    stream = puppet.puppet_stub._unary_stream(DOWNLOAD_ROUTE, DownloadRequest(id=uuid), DownloadResponse)
    return b"".join([response.chunk async for response in stream])


async def fetch_file_box(puppet: Any, json_text: str) -> Any:
    """Turn a gateway FileBox JSON into a python FileBox, downloading UUID boxes (files over 20 KB)."""
    from wechaty_puppet import FileBox

    data = json.loads(json_text)
    if data.get("type", data.get("boxType")) == UUID_BOX_TYPE:
        content = await download(puppet, data["uuid"])
        return FileBox.from_base64(base64.b64encode(content), name=data.get("name") or "file.dat")
    return FileBox.from_json(data)


def _fix_puppet_service() -> None:
    """Fix 5 and room invitations: PuppetService cannot read UUID files nor invitation payloads."""
    from wechaty_puppet_service import PuppetService

    if getattr(PuppetService.message_image, PATCH_MARK, False):
        return

    # Fix 5: over 20 KB the gateway answers with a UUID FileBox; python has no Download RPC.
    @_mark
    async def message_image(self: Any, message_id: str, image_type: int = 3) -> Any:
        response = await self.puppet_stub.message_image(id=message_id, type=image_type)
        return await fetch_file_box(self, response.filebox)

    @_mark
    async def message_file(self: Any, message_id: str) -> Any:
        response = await self.puppet_stub.message_file(id=message_id)
        return await fetch_file_box(self, response.filebox)

    # It passed to_dict()'s camelCase keys to a snake_case dataclass (TypeError); the response is the payload.
    @_mark
    async def room_invitation_payload(self: Any, room_invitation_id: str, payload: Any = None) -> Any:
        return await self.puppet_stub.room_invitation_payload(id=room_invitation_id, payload=payload)

    # The service package is typed, and replacing its methods is the point here.
    PuppetService.message_image = message_image  # type: ignore[method-assign]
    PuppetService.message_file = message_file  # type: ignore[method-assign]
    PuppetService.room_invitation_payload = room_invitation_payload  # type: ignore[method-assign]


def _fix_message_type_map() -> None:
    """Type numbers past the client's 16-entry table (Post 16, System 18) raise IndexError: the message is lost."""
    import wechaty_puppet_service.puppet as service
    from wechaty_puppet import MessageType

    if getattr(service._map_message_type, PATCH_MARK, False):
        return
    original = service._map_message_type

    @_mark
    def map_message_type(payload: Any) -> Any:
        number = payload.type
        if not isinstance(number, int):
            return original(payload)
        try:
            if number < 0:
                raise IndexError(number)  # would index the client's table from its end
            original(payload)
        except IndexError:  # past the end of the client's table: System (18), Post (16), later additions
            payload.type = MessageType.MESSAGE_TYPE_UNSPECIFIED
        if payload.type == MessageType.MESSAGE_TYPE_UNSPECIFIED:
            # Many numbers end up UNSPECIFIED (GroupNote 10 too); the transport must still tell System (18) from
            # the rest. Kept on the payload itself, so it lives exactly as long as the message object.
            payload.__dict__[ORIGINAL_TYPE_ATTRIBUTE] = int(number)
        return payload

    # PuppetService.message_payload looks the module-level function up on every call.
    service._map_message_type = map_message_type


def original_message_type(payload: Any) -> int | None:
    """The TypeScript puppet's type number of a payload the client mapped to UNSPECIFIED, else None."""
    return getattr(payload, ORIGINAL_TYPE_ATTRIBUTE, None)


def _import_wechaty_without_cwd_cache() -> None:
    """Importing wechaty creates CACHE_DIR (default ./.wechaty): point it away from the working directory."""
    if "CACHE_DIR" in os.environ:
        import wechaty  # noqa: F401

        return
    os.environ["CACHE_DIR"] = os.path.join(tempfile.gettempdir(), "relaybot-wechaty-import")
    try:
        import wechaty  # noqa: F401
    finally:
        del os.environ["CACHE_DIR"]


def _fix_room_force_sync() -> None:
    """Fix 8: Room.ready(force_sync=True) returns early on a cached payload, so topics never refresh."""
    from wechaty.user.room import Room

    if getattr(Room.ready, PATCH_MARK, False):
        return
    original = Room.ready

    @_mark
    async def ready(self: Any, force_sync: bool = False, load_members: bool = False) -> None:
        if force_sync:
            self._payload = None
        await original(self, force_sync=False, load_members=load_members)

    Room.ready = ready


def _fix_url_link_create() -> None:
    """Fix 9: UrlLink.create fetches the page over the network; build UrlLink(UrlLinkPayload(...)) instead."""
    from wechaty.user.url_link import UrlLink

    if getattr(UrlLink.create, PATCH_MARK, False):
        return

    @_mark
    def create(cls: type, url: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("UrlLink.create fetches the page; build UrlLink(UrlLinkPayload(...)) instead")

    UrlLink.create = classmethod(create)


def _fix_shared_pools() -> None:
    """Contact/Room pools are class-level and shared by every Wechaty: a new bot got the old bot's objects."""
    from wechaty import Wechaty

    if getattr(Wechaty.init_puppet, PATCH_MARK, False):
        return
    original = Wechaty.init_puppet

    @_mark
    async def init_puppet(self: Any) -> None:
        await original(self)
        for cls in (self.Contact, self.ContactSelf, self.Room):
            cls._pool = {}

    Wechaty.init_puppet = init_puppet
