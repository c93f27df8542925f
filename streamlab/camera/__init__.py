"""The test camera: a real GStreamer RTSP server on 127.0.0.1, fed synthetic frames or a file."""
