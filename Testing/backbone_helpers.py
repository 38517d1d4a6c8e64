"""Helpers for the backbone tests: tiny versions of the published MAISI configs (same keys, classes,
conditioning and scheduler; only channel widths shrunk) and a local HTTP server with Range support."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from pathlib import Path

import torch

from diffugts.backbone.config import CONFIG_DIR, BackboneConfig


def tiny_config(name: str = "maisi_rflow_v2", patch: int = 32) -> BackboneConfig:
    data = json.loads((CONFIG_DIR / f"{name}.json").read_text())
    data = copy.deepcopy(data)
    data["name"] = f"tiny-{data['name']}"
    data["autoencoder"].update(num_channels=[8, 8, 8], num_res_blocks=[1, 1, 1], norm_num_groups=4,
                               norm_float16=False, num_splits=1)
    data["unet"].update(num_channels=[8, 8, 8, 8], num_head_channels=[0, 0, 8, 8], num_res_blocks=1,
                        norm_num_groups=4, use_flash_attention=False)
    data["patch_size"] = [patch] * 3
    data["spacing_mm"] = [4.0, 4.0, 4.0]
    data["inference"]["num_steps"] = 4
    return BackboneConfig.from_dict(data)


def write_tiny_config(tmp_path: Path, name: str = "maisi_rflow_v2", **changes) -> Path:
    config = tiny_config(name)
    data = config.to_dict()
    data.update(changes)
    path = tmp_path / f"tiny_{name}.json"
    path.write_text(json.dumps(data))
    return path


def random_networks(config: BackboneConfig, seed: int = 0):
    from diffugts.backbone.networks import build_autoencoder, build_unet

    torch.manual_seed(seed)
    return build_autoencoder(config), build_unet(config)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with single-range support (http.server has none); records the requests."""

    requests: list[tuple[str, str | None]] = []
    honour_range = True

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        path = Path(self.translate_path(self.path))
        type(self).requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        if header and type(self).honour_range and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(folder: Path):
    """(server, base_url) serving ``folder`` on 127.0.0.1 in a thread; call server.shutdown() after."""
    handler = type("Handler", (RangeHandler,), {"requests": [], "honour_range": True})

    def factory(*args, **kwargs):
        return handler(*args, directory=str(folder), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    server.handler = handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
