"""Independent BBB clients against a BBB API server (the simulator now, the balancer later).

Signs requests three ways that share no code with Conflux:
  * by hand with Python's hashlib + urllib (sha1 and sha256, every call),
  * with bbbctl (PyPI; sha1),
  * with bigbluebutton-api-python (PyPI; sha1).
Exits 0 when every check passed; prints one line per failure.

Usage: bbb_interop.py API_URL SECRET CONTROL_URL
  API_URL      e.g. http://127.0.0.1:PORT/bigbluebutton/api
  CONTROL_URL  the simulator's /sim base, used to finish a recording; "-" skips the
               recording calls (a balancer without recordings yet)
"""

import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import bbbctl
from bigbluebutton_api_python import BigBlueButton

API, SECRET, CONTROL = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3].rstrip("/")
failures = []
checks = 0


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def check(label, condition, detail=""):
    global checks
    checks += 1
    if not condition:
        failures.append(f"{label}: {detail}")


def signed(call, params, alg="sha1", secret=SECRET):
    query = urllib.parse.urlencode(params)
    digest = hashlib.new(alg, (call + query + secret).encode("utf-8")).hexdigest()
    return f"{API}/{call}?{query}{'&' if query else ''}checksum={digest}"


def fetch(url, data=None, content_type=None):
    request = urllib.request.Request(url, data=data)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8", "replace")


def join(url):
    """GETs a join URL like a browser; a balancer's redirect to the node's join is followed."""
    status, headers, _ = fetch(url)
    location = headers.get("Location") or ""
    if status == 302 and "/api/join?" in location:
        status, headers, _ = fetch(location)
        location = headers.get("Location") or ""
    return status, location


def xml(body):
    return ET.fromstring(body)


def ok(label, status, body):
    try:
        root = xml(body)
    except ET.ParseError as error:
        check(label, False, f"not XML ({error}): {body[:200]}")
        return None
    check(label, status == 200 and root.findtext("returncode") == "SUCCESS", body[:300])
    return root


def by_hand(alg):
    meeting = f"interop-{alg}"
    ok(f"{alg} create", *fetch(signed("create", {"meetingID": meeting, "name": "Interop Ä", "record": "true",
                                                   "attendeePW": "ap", "moderatorPW": "mp"}, alg))[::2])
    status, location = join(signed("join", {"meetingID": meeting, "fullName": "Ann", "password": "mp"}, alg))
    check(f"{alg} join redirects to the client", status == 302 and "sessionToken=" in location, (status, location))
    root = ok(f"{alg} join redirect=false", *fetch(signed("join", {"meetingID": meeting, "fullName": "Bob",
                                                                     "role": "VIEWER", "redirect": "false"}, alg))[::2])
    check(f"{alg} join session", root is not None and root.findtext("session_token"), "no session_token")
    root = ok(f"{alg} isMeetingRunning", *fetch(signed("isMeetingRunning", {"meetingID": meeting}, alg))[::2])
    check(f"{alg} running", root is not None and root.findtext("running") == "true", "not running")
    root = ok(f"{alg} getMeetingInfo", *fetch(signed("getMeetingInfo", {"meetingID": meeting}, alg))[::2])
    check(f"{alg} participants", root is not None and root.findtext("participantCount") == "2", "count")
    root = ok(f"{alg} getMeetings", *fetch(signed("getMeetings", {}, alg))[::2])
    check(f"{alg} listed", root is not None and meeting in [m.findtext("meetingID") for m in root.iter("meeting")], "missing")
    doc = b'<modules><module name="presentation"><document url="https://example.org/a.pdf"/></module></modules>'
    ok(f"{alg} insertDocument", *fetch(signed("insertDocument", {"meetingID": meeting}, alg), doc, "application/xml")[::2])
    ok(f"{alg} sendChatMessage", *fetch(signed("sendChatMessage", {"meetingID": meeting, "message": "hi"}, alg))[::2])
    ok(f"{alg} end", *fetch(signed("end", {"meetingID": meeting}, alg))[::2])
    if CONTROL != "-":
        recordings(alg, meeting)
    calls = ["create", "join", "end", "isMeetingRunning", "getMeetingInfo", "getMeetings", "insertDocument",
             "sendChatMessage"]
    if CONTROL != "-":
        calls += ["getRecordings", "publishRecordings", "deleteRecordings", "updateRecordings"]
    for call in calls:
        url = signed(call, {"meetingID": meeting, "recordID": "x"}, alg, secret="wrong-secret")
        if call == "insertDocument":  # POST only
            status, _, body = fetch(url, doc, "application/xml")
        else:
            status, _, body = fetch(url)
        check(f"{alg} {call} with a wrong secret", "<messageKey>checksumError</messageKey>" in body, body[:200])


def recordings(alg, meeting):
    request = urllib.request.Request(f"{CONTROL}/meetings/{urllib.parse.quote(meeting)}/recording",
                                     data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        record_id = json.load(response)["recordID"]
    root = ok(f"{alg} getRecordings", *fetch(signed("getRecordings", {"meetingID": meeting}, alg))[::2])
    check(f"{alg} recording listed", root is not None and root.findtext("recordings/recording/recordID") == record_id, "")
    ok(f"{alg} publishRecordings", *fetch(signed("publishRecordings", {"recordID": record_id, "publish": "false"}, alg))[::2])
    ok(f"{alg} updateRecordings", *fetch(signed("updateRecordings", {"recordID": record_id, "meta_term": "fall"}, alg))[::2])
    status, headers, body = fetch(signed("getRecordingTextTracks", {"recordID": record_id}, alg))
    check(f"{alg} getRecordingTextTracks", status == 200 and json.loads(body)["response"]["returncode"] == "SUCCESS", body)
    ok(f"{alg} deleteRecordings", *fetch(signed("deleteRecordings", {"recordID": record_id}, alg))[::2])


def with_bbbctl():
    client = bbbctl.BBBApiClient(API, SECRET)
    client.createMeeting("bbbctl-room", "Room bbbctl", attendeePW="ap", moderatorPW="mp")
    status, location = join(client.getJoinLink("bbbctl-room", "Carla Díaz", role="MODERATOR"))
    check("bbbctl join", status == 302 and "sessionToken=" in location, status)
    info = client.getMeetingInfo("bbbctl-room")
    check("bbbctl getMeetingInfo", info.findtext("participantCount") == "1", ET.tostring(info)[:200])
    check("bbbctl getMeetings", any(m.findtext("meetingID") == "bbbctl-room" for m in client.getMeetings()), "")
    client.end("bbbctl-room")
    try:
        bbbctl.BBBApiClient(API, "wrong").getMeetings()
        check("bbbctl wrong secret", False, "accepted")
    except bbbctl.ApiError as error:
        key = error.args[0].findtext("messageKey") if error.args else None
        check("bbbctl wrong secret", key == "checksumError", key)


def with_bigbluebutton_api_python():
    bbb = BigBlueButton(API.rsplit("/api", 1)[0] + "/", SECRET)
    created = bbb.create_meeting("bbbpy-room", params={"name": "Room bbbpy", "attendeePW": "ap", "moderatorPW": "mp"})
    check("bigbluebutton-api-python create", created.get_return_code() == "SUCCESS", created.rawXml)
    check("bigbluebutton-api-python create id", created.get_meetingid() == "bbbpy-room", created.rawXml)
    status, location = join(bbb.get_join_meeting_url("Dana", "bbbpy-room", "ap"))
    check("bigbluebutton-api-python join", status == 302 and "sessionToken=" in location, status)
    info = bbb.get_meeting_info("bbbpy-room")
    check("bigbluebutton-api-python getMeetingInfo", info.get_return_code() == "SUCCESS", info.rawXml)
    check("bigbluebutton-api-python running", bbb.is_meeting_running("bbbpy-room").is_meeting_running(), "")
    check("bigbluebutton-api-python getMeetings", bbb.get_meetings().get_return_code() == "SUCCESS", "")
    ended = bbb.end_meeting("bbbpy-room", "mp")
    check("bigbluebutton-api-python end", ended.get_return_code() == "SUCCESS", ended.rawXml)


for algorithm in ("sha1", "sha256"):
    by_hand(algorithm)
with_bbbctl()
with_bigbluebutton_api_python()
for failure in failures:
    print("FAIL", failure)
print(f"interop: {checks - len(failures)} checks passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
