"""The stream's delivery moved to ``streamlab.delivery``; these names stay for callers."""

from streamlab.delivery.stream import StreamDelivery
from streamlab.delivery.stream import StreamDelivery as Fanout
from streamlab.delivery.viewer import Viewer

__all__ = ["Fanout", "StreamDelivery", "Viewer"]
