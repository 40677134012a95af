#!/usr/bin/env python3
"""CPU time of two unavoidable parts of a launch, measured on this machine in the benchmark's run (bench/run.sh):

  * one RS256 signature verification of a 2048-bit key (OpenSSL through `cryptography`; the gateway uses BoringSSL
    through swift-crypto, the same algorithm and key size), and
  * one durable commit of a one-row SQLite write in WAL mode with synchronous=NORMAL (the gateway's settings), each
    statement its own transaction (the gateway commits concurrent writes together, so this is an upper bound).

Prints one JSON object: {"rs256_verify_us": …, "sqlite_commit_us": …}. Bounded: N iterations each (default 2000).
Needs `cryptography` (bench/run.sh installs it into its virtualenv)."""
import json
import os
import sqlite3
import sys
import tempfile
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
message = os.urandom(1200)
signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
public = key.public_key()
start = time.process_time()
for _ in range(N):
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
verify_us = (time.process_time() - start) * 1e6 / N

with tempfile.TemporaryDirectory() as folder:
    db = sqlite3.connect(os.path.join(folder, "parts.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL, at REAL NOT NULL)")
    body = "x" * 300
    start = time.process_time()
    for i in range(N):
        db.execute("INSERT INTO t (id, body, at) VALUES (?, ?, ?)", (f"row-{i}", body, time.time()))
    commit_us = (time.process_time() - start) * 1e6 / N
    db.close()

print(json.dumps({"rs256_verify_us": round(verify_us, 1), "sqlite_commit_us": round(commit_us, 1), "iterations": N}))
