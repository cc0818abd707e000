"""Imported by the fork server alone (forkserver.PRELOAD): when the coordinator is gone, the
server exits without tearing its interpreter down (numpy, onnxruntime: ~0.05 s of a core). Its
workers leave through os._exit already; nothing of the server's needs flushing."""

import atexit
import os

atexit.register(os._exit, 0)
