"""content/ as a package, so that its files (messages*.toml, alerts/, examples/) are package data: the same
`importlib.resources.files("content")` finds them in a checkout, an editable install and an installed wheel.
No code lives here."""
