"""WebRTC delivery: encode once per stream, fan out to every viewer, WHEP, viewer page."""
