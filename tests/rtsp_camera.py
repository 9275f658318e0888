"""A real RTSP camera for the tests: GStreamer's RTSP server (Debian's gst-rtsp-server) playing MP4
files live, as an IP camera streams, each at its own mount (e.g. /main and /sub).

Run by the system Python, where the GObject bindings live (not the project's venv):
    /usr/bin/python3 tests/rtsp_camera.py PORT /main=clip.mp4 [/sub=small.mp4 ...]
It prints "ready" once it listens, and plays each file from its start for every new session
(the files hold H.264 without B-frames, as cameras send).  The test stops it with SIGTERM.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    Gst.init(None)
    port, mounts = sys.argv[1], sys.argv[2:]
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    points = server.get_mount_points()
    for mount in mounts:
        path, clip = mount.split("=", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f"( filesrc location={clip} ! qtdemux ! h264parse config-interval=-1 ! identity sync=true "
                           "! rtph264pay name=pay0 pt=96 config-interval=-1 )")
        factory.set_shared(False)
        points.add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    GLib.timeout_add(200, lambda: True)  # lets Python's signal handler run inside the loop
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
