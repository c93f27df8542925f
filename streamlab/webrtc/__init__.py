"""WebRTC delivery: encode once per stream, fan out to every viewer, WHEP, viewer page."""

from streamlab.webrtc import consent as _consent

_consent.install()  # RFC 7675 consent for every aioice connection (see consent.py)
