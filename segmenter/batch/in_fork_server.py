"""Imported by the fork server alone, last of forkserver.PRELOAD: what it has imported is moved
out of the garbage collector's reach (gc.freeze, as Python's documentation advises before
forking), so that no worker's collection walks those objects, a full pass of about 20 ms in
each worker's first files that also copies the pages it touches; and when the coordinator is
gone the server exits without tearing its interpreter down (numpy, onnxruntime: ~0.05 s of a
core). Its workers leave through os._exit already; nothing of the server's needs flushing."""

import atexit
import gc
import os

gc.freeze()
atexit.register(os._exit, 0)
