"""Reading a child's stdout or stderr to the end without keeping more than its head and tail."""

from __future__ import annotations

import os
import threading


class Capture:
    """Reads one pipe to the end on a thread, keeping the head and the tail."""

    def __init__(self, stream, keep: int):
        self.head, self.tail, self.keep, self.total = bytearray(), bytearray(), keep, 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        fd = stream.fileno()
        while chunk := os.read(fd, 1 << 16):
            self.total += len(chunk)
            room = self.keep - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > 2 * self.keep:
                del self.tail[: len(self.tail) - self.keep]
        stream.close()

    def text(self) -> str:
        tail = bytes(self.tail[-self.keep:])
        omitted = self.total - len(self.head) - len(tail)
        middle = f"\n[... {omitted} bytes omitted ...]\n" if omitted > 0 else ""
        return (bytes(self.head).decode("utf-8", "replace") + middle + tail.decode("utf-8", "replace"))


__all__ = ["Capture"]
