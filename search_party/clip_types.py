"""Which files are video clips: shared by the server (what it accepts) and the camera-side
uploader (what it sends), without importing the vision stack."""

# Containers PyAV/FFmpeg decodes that cameras and phones write.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".ts", ".mts")
