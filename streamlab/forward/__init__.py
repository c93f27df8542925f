"""Streams beyond one process: forwards to an SFU (Janus's Streaming plugin).

``Server.add_forward("janus:http://HOST:8088/janus?id=1000")`` (or ``streamlab serve
--forward ...``) sends each stream to a Janus mountpoint; viewers watch it through Janus
(``streamlab.forward.janus_viewer.JanusViewer`` for an aiortc viewer).
"""

from streamlab.forward.janus import JanusForward
from streamlab.forward.janus_api import JanusError, JanusSession
from streamlab.forward.make import make_forwards
from streamlab.forward.spec import ForwardSpec

__all__ = ["ForwardSpec", "JanusError", "JanusForward", "JanusSession", "make_forwards"]
