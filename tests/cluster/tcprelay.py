#!/usr/bin/env python3
"""tcprelay.py - a TCP relay for the multi-host harness: accept on LISTEN,
connect each accepted connection to TARGET, copy bytes both ways until either
side closes. Standard library only; one thread per direction (a handful of
Kafka connections, not a data path to measure).

    tcprelay.py LISTEN_HOST:PORT TARGET_HOST:PORT

netcluster.py runs it inside host namespaces (nsenter --net) to make
gust-kafka-mock, which listens on its namespace's loopback only and advertises
127.0.0.1:<port> in its metadata, reachable from other hosts:

    store3 (broker host): 10.214.0.13:<port>  ->  127.0.0.1:<port>
    ctlN (trigger host):  127.0.0.1:<port>    ->  10.214.0.13:<port>

It prints "listening HOST:PORT" once bound, so the harness knows it is ready.
"""
import socket
import sys
import threading


def split(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def pump(src, dst, done):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # Either direction ending ends the connection (Kafka never half-closes).
        if not done.is_set():
            done.set()
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def serve(conn, target):
    try:
        up = socket.create_connection(target, timeout=5)
    except OSError as e:
        sys.stderr.write("tcprelay: cannot reach %s:%d: %s\n" % (target + (e,)))
        conn.close()
        return
    up.settimeout(None)
    for s in (conn, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = threading.Event()
    t = threading.Thread(target=pump, args=(up, conn, done), daemon=True)
    t.start()
    pump(conn, up, done)
    t.join()
    conn.close()
    up.close()


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: tcprelay.py LISTEN_HOST:PORT TARGET_HOST:PORT\n")
        sys.exit(2)
    listen, target = split(sys.argv[1]), split(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(listen)
    ls.listen(64)
    print("listening %s:%d" % listen, flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, target), daemon=True).start()


if __name__ == "__main__":
    main()
