"""RTP payload formats written in the project (VP9, AV1), plugged into aiortc's codec tables.

Importing this package registers them (``register()``, idempotent): import it wherever a
peer connection that may send or receive VP9/AV1 is created.
"""

from streamlab.webrtc.codecs.register import register, registered

register()

__all__ = ["register", "registered"]
