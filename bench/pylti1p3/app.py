"""The comparison tool for `bench/run.sh`: pylti1p3's own Flask integration doing the same OIDC login and
id_token launch validation as the gateway (state cookie, nonce in the session, signature, claims), with
the platform's key set configured inline (no JWKS fetch per launch: its fairest set-up).

Run by `bench/run.sh` under gunicorn with 2 workers; not used by the test suite."""
import json
import os

from flask import Flask, redirect
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.tool_config import ToolConfDict

app = Flask(__name__)
app.secret_key = os.environ["BENCH_FLASK_SECRET"]  # random per run, set by bench/run.sh
with open(os.environ["BENCH_TOOL_CONF"], encoding="utf-8") as f:
    tool_conf = ToolConfDict(json.load(f))


@app.route("/lti/login", methods=["GET", "POST"])
def login():
    flask_request = FlaskRequest()
    target = flask_request.get_param("target_link_uri")
    return FlaskOIDCLogin(flask_request, tool_conf).redirect(target)


@app.route("/lti/launch", methods=["POST"])
def launch():
    message_launch = FlaskMessageLaunch(FlaskRequest(), tool_conf)
    data = message_launch.get_launch_data()  # validates state, JWT, signature, nonce and LTI claims
    lab = data.get("https://purl.imsglobal.org/spec/lti/claim/custom", {}).get("labid", "")
    return redirect("http://127.0.0.1/lab/" + lab, code=303)


@app.errorhandler(Exception)
def refused(error):
    return {"error": type(error).__name__}, 400


@app.route("/healthz")
def healthz():
    return "ok\n"
