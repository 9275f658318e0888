"""`search-party agent watch | rtsp | frigate`: the camera-side agents (search_party/agent/)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from search_party.config import load_agent_settings

DEFAULT_SERVER = "https://127.0.0.1:8000"


def _connection(token: str | None, server: str | None, listed_server: str | None = None) -> tuple[str, str]:
    """The token and server: the option, else the SEARCH_PARTY_* setting, else a camera list's."""
    defaults = load_agent_settings()
    token = token or (defaults.agent_token.get_secret_value() if defaults.agent_token else "")
    return token, server or defaults.server or listed_server or DEFAULT_SERVER


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every agent takes: the server, the token, and whether plain http is allowed."""
    for option in reversed((
        click.option("--token", help="The camera's upload token (or set SEARCH_PARTY_AGENT_TOKEN, which keeps "
                     "it out of the process list)."),
        click.option("--server", help="The Search Party server's address (or set SEARCH_PARTY_SERVER)."),
        click.option("--local-network", is_flag=True, help="Allow a plain http:// server: only when it is on "
                     "your own network (the token and footage travel unencrypted)."),
    )):
        command = option(command)
    return command


@click.group()
def agent() -> None:
    """Send a camera's clips to a Search Party server from the machine that records them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")


@agent.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--camera", "camera_id", type=int, required=True, help="The camera's id (on its page).")
@connection_options
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to remember what was sent (default FOLDER/.search-party-uploads.json).")
@click.option("--interval", default=30.0, show_default=True, type=click.FloatRange(1),
              help="Seconds between scans of the folder.")
@click.option("--settle", default=10.0, show_default=True, type=click.FloatRange(0),
              help="Seconds a file must go unchanged before it is sent (the camera may still be writing).")
@click.option("--once", is_flag=True, help="Scan once, send what is new, and exit (exit 2 if a clip "
              "was refused or could not be sent, or the camera is paused).")
def watch(folder: Path, camera_id: int, token: str | None, server: str | None, local_network: bool,
          state_path: Path | None, interval: float, settle: float, once: bool) -> None:
    """Send every new video clip under FOLDER to the server, each exactly once (resumable)."""
    from search_party.agent.watch import Agent

    token, server = _connection(token, server)
    uploader = Agent.create(folder, camera_id, token, server, state_path, local_network=local_network,
                            settle_s=settle, say=click.echo)
    if once:
        result = uploader.scan_once()
        click.echo(f"{len(result.uploaded)} uploaded, {len(result.duplicates)} already sent, "
                   f"{len(result.refused)} refused, {len(result.postponed)} to retry"
                   + (f"; held: camera is {result.held}" if result.held else ""))
        if not result.ok:
            sys.exit(2)
        return
    click.echo(f"watching {folder} for camera {camera_id}; Ctrl-C stops")
    uploader.watch(interval)


@agent.command()
@click.argument("url", required=False)
@click.option("--camera", "camera_id", type=int, help="The camera's id on the server (on its page).")
@connection_options
@click.option("--motion-url", help="The camera's low-resolution sub-stream, for motion (cheaper; as Frigate "
              "does). Without it, motion is found on the main stream.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A TOML list of cameras instead of URL and --camera (several cameras, one agent).")
@click.option("--pre-roll", default=3.0, show_default=True, type=float, help="Seconds kept before motion.")
@click.option("--post-roll", default=5.0, show_default=True, type=float, help="Seconds kept after motion ends.")
@click.option("--max-clip", default=60.0, show_default=True, type=float, help="Longest clip, seconds.")
@click.option("--spool", "spool_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("search-party-rtsp"), show_default=True,
              help="Where clips wait to be sent, and the record of what was sent.")
@click.option("--max-spool-mb", default=500.0, show_default=True, type=float,
              help="Disk the waiting clips may use; the oldest are dropped beyond it.")
def rtsp(url: str | None, camera_id: int | None, token: str | None, server: str | None, local_network: bool,
         motion_url: str | None, config_path: Path | None, pre_roll: float, post_roll: float, max_clip: float,
         spool_dir: Path, max_spool_mb: float) -> None:
    """Watch an RTSP camera (URL) and send only the moments something moved, each once."""
    import threading

    from search_party.agent.client import check_server_url
    from search_party.agent.rtsp import CameraConfig, build_agents, load_config, run_agents
    from search_party.errors import UserError

    if config_path is not None:
        if url or camera_id is not None:
            raise UserError("give either URL and --camera, or --config with a list of cameras")
        listed_server, _ = load_config(config_path)
        token, server = _connection(token, server, listed_server)
        _, configs = load_config(config_path, token=token)
    else:
        token, server = _connection(token, server)
        if not url or camera_id is None:
            raise UserError("give the camera's rtsp:// URL and --camera ID (or --config FILE)")
        configs = [CameraConfig(url=url, camera_id=camera_id, token=token, motion_url=motion_url,
                                pre_roll=pre_roll, post_roll=post_roll, max_clip=max_clip,
                                max_spool_mb=max_spool_mb)]
    agents = build_agents(configs, check_server_url(server, local_network=local_network), spool_dir,
                          threading.Event(), click.echo)
    click.echo(f"watching {len(agents)} camera(s); clips wait in {spool_dir}; Ctrl-C stops")
    run_agents(agents)


@agent.command()
@click.option("--mqtt", "mqtt_host", required=True, help="The MQTT broker Frigate publishes to: HOST[:PORT].")
@click.option("--mqtt-user", help="MQTT user name, if the broker wants one.")
@click.option("--mqtt-password", help="MQTT password (or leave out and use a broker account without one).")
@click.option("--topic-prefix", default="frigate", show_default=True, help="Frigate's mqtt.topic_prefix.")
@click.option("--frigate-url", required=True, help="Frigate's HTTP address, e.g. http://frigate.local:5000.")
@click.option("--camera-map", "camera_map", multiple=True, required=True, metavar="FRIGATE_NAME=ID",
              help="A Frigate camera and the Search Party camera it is (repeat for each camera).")
@connection_options
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("search-party-frigate"), show_default=True,
              help="Where to remember which events were sent.")
def frigate(mqtt_host: str, mqtt_user: str | None, mqtt_password: str | None, topic_prefix: str,
            frigate_url: str, camera_map: tuple[str, ...], token: str | None, server: str | None,
            local_network: bool, state_dir: Path) -> None:
    """Send the clips of Frigate's dog and cat events (never a person's), each once."""
    import threading

    from search_party.agent.client import check_server_url
    from search_party.agent.frigate import build_bridge, parse_camera_map, parse_host

    token, server = _connection(token, server)
    host, port = parse_host(mqtt_host)
    bridge = build_bridge(frigate_url, parse_camera_map(camera_map),
                          check_server_url(server, local_network=local_network), token, state_dir, click.echo,
                          topic_prefix)
    click.echo(f"listening to {bridge.topic} on {host}:{port} for {', '.join(bridge.cameras)}; Ctrl-C stops")
    stop = threading.Event()
    try:
        bridge.run(host, port, stop, username=mqtt_user, password=mqtt_password)
    except KeyboardInterrupt:
        stop.set()
