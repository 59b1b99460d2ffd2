"""A TCP proxy that cuts a connection once the service's answer starts to come back."""

from __future__ import annotations

import socket
import struct
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the upstream port; drops the first ``cuts`` connections mid-answer.

    A cut connection forwards the request whole, waits for the first bytes
    of the answer (the service has then finished the call: committed, and
    stored its answer), and resets both sides without passing them on: the
    client never reads the answer.
    """

    def __init__(self, upstream_port: int, cuts: int = 1) -> None:
        self.upstream_port = upstream_port
        self.cuts = cuts
        self.cut = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self._sockets.extend([client, upstream])
        with self._lock:
            cut = self.cuts > 0
            if cut:
                self.cuts -= 1
        forward = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
        forward.start()
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if cut:
                    with self._lock:
                        self.cut += 1
                    _reset(client)
                    _reset(upstream)
                    return
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        _close(target)

    def close(self) -> None:
        self._stopping.set()
        self._listener.close()
        for sock in self._sockets:
            _close(sock)
        self._accepting.join(5)


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: the connection ends abruptly, as when a network path or a proxy in it dies.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    # shutdown() first: close() alone does not wake the thread blocked in recv() on it.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
