#!/usr/bin/env node
// A real Wechaty puppet-service gateway (PuppetServer over PuppetMock) for end-to-end tests.
//
//   node tests/gateway/gateway.mjs --port 0 --control-port 0 --token TOKEN [--exit-on-stdin-close]
//
// Prints one JSON line on stdout when ready: {"event":"ready","grpc_port":N,"control_port":M}.
// The control channel is HTTP JSON on 127.0.0.1:control_port (see `routes` below).
// Everything the gateway logs goes to stderr, so stdout carries only the ready line.

import http from 'node:http'
import net from 'node:net'
import crypto from 'node:crypto'
import path from 'node:path'

import { FileBox } from 'file-box'
import * as PUPPET from 'wechaty-puppet'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import { PuppetServer, log } from 'wechaty-puppet-service'

// brolog prints info/verbose through console.info, which is stdout: keep stdout for the ready line.
process.noDeprecation = true // grpc-js warns that start() is redundant: noise on stderr
console.info = console.log = console.debug = (...args) => console.error(...args)
log.level(process.env.WECHATY_LOG || 'error')

const BOT_ID = 'bot-self'
const BOT_NAME = '反诈助手'
const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.bmp'])

function parseArgs (argv) {
  const args = { port: 0, controlPort: 0, token: '', exitOnStdinClose: false }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--port') args.port = Number(argv[++i])
    else if (flag === '--control-port') args.controlPort = Number(argv[++i])
    else if (flag === '--token') args.token = argv[++i]
    else if (flag === '--exit-on-stdin-close') args.exitOnStdinClose = true
    else throw new Error(`unknown argument: ${flag}`)
  }
  if (!args.token) throw new Error('--token is required')
  return args
}

// grpc-js does not tell which port it bound to, so an ephemeral port is picked here first.
function freePort () {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.on('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

// Ids must be unique across gateway runs too: python-wechaty drops message ids it has seen before.
const runPrefix = crypto.randomBytes(4).toString('hex')
let idCounter = 0
const newId = (kind) => `${kind}-${runPrefix}-${++idCounter}`

const files = new Map() // message id -> FileBox JSON (base64) of an image or file message
const links = new Map() // message id -> UrlLinkPayload
const nicknames = new Map() // room id -> Map(contact id -> group nickname)
const invitations = new Map() // invitation id -> { payload, roomId, accepted }
const quits = [] // room ids the bot quit
const announcements = new Map() // room id -> text
const sent = [] // what the bot sent, in order
let sentSeq = 0

const mocker = new mock.Mocker()

class GatewayPuppet extends PuppetMock {
  // puppet-mock drops the mention list, returns no message id and records nothing: record and echo instead.
  async messageSendText (conversationId, text, mentionIdList = []) {
    return this.recordAndEcho(conversationId, { kind: 'text', text, mention_ids: [...mentionIdList] }, {
      type: PUPPET.types.Message.Text, text, mentionIdList: [...mentionIdList],
    })
  }

  async messageSendFile (conversationId, fileBox) {
    const buffer = await fileBox.toBuffer()
    const isImage = IMAGE_EXTENSIONS.has(path.extname(fileBox.name).toLowerCase())
    const messageId = newId('sent')
    files.set(messageId, FileBox.fromBase64(buffer.toString('base64'), fileBox.name).toJSON())
    return this.recordAndEcho(
      conversationId,
      { kind: isImage ? 'image' : 'file', file_name: fileBox.name, size: buffer.length },
      { type: isImage ? PUPPET.types.Message.Image : PUPPET.types.Message.Attachment, filename: fileBox.name },
      messageId,
    )
  }

  async messageSendUrl (conversationId, urlLinkPayload) {
    const { url = '', title = '', description = '', thumbnailUrl = '' } = urlLinkPayload
    const messageId = newId('sent')
    links.set(messageId, { url, title, description, thumbnailUrl })
    return this.recordAndEcho(
      conversationId,
      { kind: 'link', url, title, description },
      { type: PUPPET.types.Message.Url, text: url },
      messageId,
    )
  }

  async recordAndEcho (conversationId, record, payload, messageId = newId('sent')) {
    if (!this.isLoggedIn) throw new Error('not logged in')
    const isRoom = conversationId.endsWith('@chatroom')
    if (isRoom) mocker.roomPayload(conversationId) // throws for an unknown room
    else mocker.contactPayload(conversationId)
    sentSeq += 1
    sent.push({
      seq: sentSeq,
      message_id: messageId,
      timestamp: Date.now(),
      conversation_id: conversationId,
      kind: 'text',
      text: '',
      mention_ids: [],
      file_name: '',
      size: 0,
      url: '',
      title: '',
      description: '',
      ...record,
    })
    // A real gateway echoes the bot's own sends back as messages.
    emitMessage({
      id: messageId,
      talkerId: BOT_ID,
      ...(isRoom ? { roomId: conversationId } : { listenerId: conversationId }),
      ...payload,
    })
    return messageId
  }

  // puppet-mock returns a fake QR code and a fake link for every message: serve what was injected.
  async messageImage (messageId) { return this.messageFile(messageId) }

  async messageFile (messageId) {
    const json = files.get(messageId)
    if (!json) throw new Error(`no file in message ${messageId}`)
    return FileBox.fromJSON(json)
  }

  async messageUrl (messageId) {
    const payload = links.get(messageId)
    if (!payload) throw new Error(`no link in message ${messageId}`)
    return payload
  }

  async roomMemberRawPayload (roomId, contactId) {
    const contact = await this.contactPayload(contactId)
    return {
      avatar: contact.avatar || '',
      id: contactId,
      name: contact.name,
      roomAlias: nicknames.get(roomId)?.get(contactId) || '',
    }
  }

  async roomInvitationRawPayload (invitationId) {
    const invitation = invitations.get(invitationId)
    if (!invitation) throw new Error(`no invitation ${invitationId}`)
    return invitation.payload
  }

  async roomInvitationAccept (invitationId) {
    const invitation = invitations.get(invitationId)
    if (!invitation) throw new Error(`no invitation ${invitationId}`)
    if (invitation.accepted) return
    invitation.accepted = true
    const { roomId, payload } = invitation
    if (!mocker.cacheRoomPayload.has(roomId)) {
      const memberIds = [payload.inviterId, ...payload.memberIdList]
      createRoom({ id: roomId, topic: payload.topic, member_ids: memberIds }, false)
    }
    addMembers(roomId, payload.inviterId, [BOT_ID])
  }

  async roomQuit (roomId) {
    const room = mocker.roomPayload(roomId)
    room.memberIdList = room.memberIdList.filter(m => m !== BOT_ID)
    quits.push(roomId)
    dirtyRoom(roomId)
  }

  // Getters and setters that puppet-mock only logs: keep real state so python's compat fixes can be checked.
  async contactAlias (contactId, alias) {
    const contact = mocker.contactPayload(contactId)
    if (typeof alias === 'undefined') return contact.alias || ''
    contact.alias = alias || ''
    this.cache.contact.delete(contactId)
  }

  async roomTopic (roomId, topic) {
    const room = mocker.roomPayload(roomId)
    if (typeof topic === 'undefined') return room.topic
    changeTopic(roomId, topic, BOT_ID)
  }

  async roomAnnounce (roomId, text) {
    mocker.roomPayload(roomId)
    if (typeof text === 'undefined') return announcements.get(roomId) || ''
    announcements.set(roomId, text)
  }
}

const puppet = new GatewayPuppet({ mocker })

// Log the bot in on every client start: each python client calls Stop then Start.
mocker.use((m) => {
  m.login(m.ContactMock.load(BOT_ID))
  return () => {}
})

function emitMessage (payload) {
  mocker.MessageMock.create({ timestamp: Date.now(), mentionIdList: [], ...payload })
  puppet.emit('message', { messageId: payload.id })
}

function createContact ({ id, name }) {
  if (!id || !name) throw new HttpError(400, 'contact needs id and name')
  if (mocker.cacheContactPayload.has(id)) throw new HttpError(409, `contact ${id} exists`)
  mocker.ContactMock.create({
    id,
    name,
    alias: '',
    avatar: '',
    friend: true,
    gender: PUPPET.types.ContactGender.Unknown,
    phone: [],
    type: PUPPET.types.Contact.Individual,
  })
}

function createRoom ({ id, topic, member_ids: memberIds = [], nicknames: roomNicknames = {} }, withBot = true) {
  if (!id || !id.endsWith('@chatroom')) throw new HttpError(400, 'room id must end with @chatroom')
  if (mocker.cacheRoomPayload.has(id)) throw new HttpError(409, `room ${id} exists`)
  for (const memberId of memberIds) mocker.contactPayload(memberId)
  mocker.RoomMock.create({
    id,
    topic: topic || '',
    memberIdList: [...(withBot ? [BOT_ID] : []), ...memberIds.filter(m => m !== BOT_ID)],
    adminIdList: [],
    avatar: '',
    ownerId: memberIds[0] || BOT_ID,
  })
  nicknames.set(id, new Map(Object.entries(roomNicknames)))
}

function dirtyRoom (roomId) {
  puppet.cache.room.delete(roomId)
  puppet.cache.roomMember.delete(roomId)
}

function addMembers (roomId, inviterId, memberIds, roomNicknames = {}) {
  const room = mocker.roomPayload(roomId)
  for (const memberId of memberIds) {
    mocker.contactPayload(memberId)
    if (!room.memberIdList.includes(memberId)) room.memberIdList.push(memberId)
  }
  for (const [memberId, nickname] of Object.entries(roomNicknames)) nicknames.get(roomId)?.set(memberId, nickname)
  dirtyRoom(roomId)
  puppet.emit('room-join', { inviteeIdList: memberIds, inviterId, roomId, timestamp: Date.now() })
}

function changeTopic (roomId, topic, changerId) {
  const room = mocker.roomPayload(roomId)
  const oldTopic = room.topic
  room.topic = topic
  dirtyRoom(roomId)
  puppet.emit('room-topic', { changerId, newTopic: topic, oldTopic, roomId, timestamp: Date.now() })
}

function conversationFields (from, roomId) {
  mocker.contactPayload(from)
  if (roomId) {
    if (!mocker.roomPayload(roomId).memberIdList.includes(from)) {
      throw new HttpError(400, `${from} is not in ${roomId}`)
    }
    return { talkerId: from, roomId }
  }
  return { talkerId: from, listenerId: BOT_ID }
}

class HttpError extends Error {
  constructor (status, message) { super(message); this.status = status }
}

const routes = {
  'GET /health': () => ({ ok: true, logged_in: puppet.isLoggedIn }),

  'POST /contacts': (body) => { createContact(body); return { ok: true } },

  'POST /rooms': (body) => { createRoom(body); return { ok: true } },

  'POST /say': ({ from, room, text = '', mention_ids: mentionIds = [] }) => {
    const id = newId('msg')
    const fields = conversationFields(from, room)
    emitMessage({ id, ...fields, type: PUPPET.types.Message.Text, text, mentionIdList: mentionIds })
    return { message_id: id }
  },

  // A message of any TypeScript puppet type number with its text as the puppet would send it (a 群接龙 XML or
  // title for GroupNote 10, a <sysmsg> for Recalled 13, Post 16, System 18, ...): numbers python-wechaty
  // cannot map are what this is for, so it passes the number through unchecked.
  'POST /raw': ({ from, room, type, text = '', mention_ids: mentionIds = [] }) => {
    if (!Number.isInteger(type) || type < 0) throw new HttpError(400, 'raw needs type, a non-negative integer')
    const id = newId('msg')
    const fields = conversationFields(from, room)
    emitMessage({ id, ...fields, type, text, mentionIdList: mentionIds })
    return { message_id: id }
  },

  'POST /image': ({ from, room, name, base64 }) => {
    if (!name || !base64) throw new HttpError(400, 'image needs name and base64')
    const id = newId('msg')
    const fields = conversationFields(from, room)
    files.set(id, FileBox.fromBase64(base64, name).toJSON())
    emitMessage({ id, ...fields, type: PUPPET.types.Message.Image, filename: name })
    return { message_id: id }
  },

  'POST /file': ({ from, room, name, base64 }) => {
    if (!name || !base64) throw new HttpError(400, 'file needs name and base64')
    const id = newId('msg')
    const fields = conversationFields(from, room)
    files.set(id, FileBox.fromBase64(base64, name).toJSON())
    emitMessage({ id, ...fields, type: PUPPET.types.Message.Attachment, filename: name })
    return { message_id: id }
  },

  'POST /link': ({ from, room, url, title = '', description = '', thumbnail_url: thumbnailUrl = '' }) => {
    if (!url) throw new HttpError(400, 'link needs url')
    const id = newId('msg')
    const fields = conversationFields(from, room)
    links.set(id, { url, title, description, thumbnailUrl })
    emitMessage({ id, ...fields, type: PUPPET.types.Message.Url, text: url })
    return { message_id: id }
  },

  'POST /join': ({ room, inviter, member_ids: memberIds = [], nicknames: roomNicknames = {} }) => {
    mocker.contactPayload(inviter)
    addMembers(room, inviter, memberIds, roomNicknames)
    return { ok: true }
  },

  'POST /topic': ({ room, topic, changer }) => {
    changeTopic(room, topic, changer || mocker.roomPayload(room).ownerId)
    return { ok: true }
  },

  'POST /invite': ({ inviter, room_id: roomId, topic = '', member_ids: memberIds = [] }) => {
    mocker.contactPayload(inviter)
    if (!roomId || !roomId.endsWith('@chatroom')) throw new HttpError(400, 'room_id must end with @chatroom')
    const id = newId('invite')
    invitations.set(id, {
      roomId,
      accepted: false,
      payload: {
        id,
        inviterId: inviter,
        topic,
        memberIdList: memberIds,
        memberCount: memberIds.length + 1,
        receiverId: BOT_ID,
        avatar: '',
        invitation: '',
        timestamp: Date.now(),
      },
    })
    puppet.emit('room-invite', { roomInvitationId: id })
    return { invitation_id: id }
  },

  'GET /quits': () => quits,

  'GET /invites': () => [...invitations.values()].map(({ payload, roomId, accepted }) => ({
    invitation_id: payload.id, room_id: roomId, inviter: payload.inviterId, topic: payload.topic, accepted,
  })),

  'GET /sent': (_body, query) => {
    const since = Number(query.get('since') || 0)
    return sent.filter(item => item.seq > since)
  },

  'POST /stop-grpc': async () => { await grpcServer.stop(); return { ok: true } },

  'POST /start-grpc': async () => { await grpcServer.start(); return { ok: true } },
}

async function readJson (req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  const text = Buffer.concat(chunks).toString('utf8')
  return text ? JSON.parse(text) : {}
}

async function handle (req, res) {
  const url = new URL(req.url, 'http://127.0.0.1')
  const route = routes[`${req.method} ${url.pathname}`]
  let status = 200
  let result
  try {
    if (!route) throw new HttpError(404, `no route ${req.method} ${url.pathname}`)
    const body = req.method === 'POST' ? await readJson(req) : {}
    result = await route(body, url.searchParams)
  } catch (e) {
    // puppet-mock says "no payload found" or "not exist" for unknown contacts, rooms and messages.
    const notFound = /no payload found|not exist/.test(e.message)
    status = e.status || (e instanceof SyntaxError ? 400 : notFound ? 404 : 500)
    result = { error: e.message }
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(result))
}

const args = parseArgs(process.argv.slice(2))
createContact({ id: BOT_ID, name: BOT_NAME })

const grpcPort = args.port || await freePort()
const grpcServer = new PuppetServer({
  endpoint: `127.0.0.1:${grpcPort}`,
  puppet,
  token: args.token,
  tls: { disable: true }, // python-wechaty 0.10 speaks plaintext HTTP/2 only
})
await grpcServer.start()

const control = http.createServer((req, res) => { handle(req, res) })
await new Promise((resolve, reject) => {
  control.on('error', reject)
  control.listen(args.controlPort, '127.0.0.1', resolve)
})

const shutdown = () => process.exit(0)
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
if (args.exitOnStdinClose) {
  // The test harness holds our stdin: if it dies without killing us, we go too.
  process.stdin.on('end', shutdown)
  process.stdin.on('error', shutdown)
  process.stdin.resume()
}

const ready = { event: 'ready', grpc_port: grpcPort, control_port: control.address().port }
process.stdout.write(JSON.stringify(ready) + '\n')
