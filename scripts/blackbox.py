"""What the black-box scripts (exhaustion.py, kill9.py) share: a gateway child that dies with its script and runs
on its own settings, free ports on 127.0.0.1, and the figures as result lines and JSON. Standard library only;
Linux only (PR_SET_PDEATHSIG)."""

import ctypes
import json
import os
import signal
import socket
import sys

HOST = "127.0.0.1"
#: Variables dropped from the child's environment: it runs on the settings the script gives it, not the shell's.
INHERITED_SETTINGS = ("GATEWAY_", "SKILLABLE_", "SKYPREP_")
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here, so that a child only calls into it between fork and exec


def die_with_parent():
    """In a child before exec: it gets SIGKILL when the script ends, even when the script is killed."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def clean_environment():
    """This process's environment without gateway and vendor settings."""
    return {name: value for name, value in os.environ.items() if not name.startswith(INHERITED_SETTINGS)}


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def format_value(value):
    """A figure as it reads on a result line: floats with two decimals, dicts and lists without spaces,
    lists cut after six items (the JSON has them all)."""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        more = f",+{len(value) - 6} more" if len(value) > 6 else ""
        return "[" + ",".join(format_value(v) for v in value[:6]) + more + "]"
    return str(value)


def rounded(value):
    """`value` with every float in it rounded to three decimals."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def write_json(path, document):
    """Writes `document` to `path`; False (and a line on stderr) when it cannot."""
    try:
        with open(path, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        return True
    except OSError as failure:
        print(f"cannot write {path}: {failure}", file=sys.stderr)
        return False
