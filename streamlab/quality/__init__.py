"""What the viewer sees: picture quality (PSNR, SSIM) against the source frame each
received frame shows, smoothness (freezes, pauses, harmonic frame rate, dropped and
repeated frames), and the reference frames both are judged against.

Modules load on use (``from streamlab.quality import metrics``): ``metrics`` needs OpenCV.
"""
