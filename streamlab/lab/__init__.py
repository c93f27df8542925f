"""The notebook layer: live controls, preview, recording and serving — public API only."""
