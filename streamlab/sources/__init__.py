"""Frame sources: synthetic, file, RTSP; a pool shares one connection per URL."""
