"""Run as a script (under PythonSlicer): print one JSON line describing torch, CUDA and the GPUs.

It runs in a separate process so that importing torch never slows down or breaks Slicer itself.
"""

import json


def probe() -> dict:
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda": None, "gpus": []}
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            gpus.append({"name": properties.name, "memory_gb": round(properties.total_memory / 2**30, 1)})
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": gpus}


if __name__ == "__main__":
    print(json.dumps(probe()), flush=True)
