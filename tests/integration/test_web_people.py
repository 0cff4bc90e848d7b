"""The dashboard's people pages change participants through the same place as the CLI."""

from __future__ import annotations

import html

from tests.browser.dashboard import Visitor, start_dashboard
from tests.conftest import MODERATOR_A, Pals, Relay


def test_enrolment_errors_name_the_field_label_and_leaving_is_audited(
    relay: Relay, pals: Pals
) -> None:
    dashboard = start_dashboard(relay)
    ana = Visitor(dashboard)
    ana.sign_in(MODERATOR_A)
    csrf = ana.csrf("/participants")
    bad = ana.request("/participants", {"csrf": csrf, "name": "Ava", "email": "not-an-address"})
    assert bad.status == 400
    assert "Real email address: " in html.unescape(bad.text)
    assert "--email" not in bad.text

    left = ana.request(f"/participants/{pals.maya.id}/status", {"csrf": csrf, "status": "left"})
    assert left.status == 303 and left.headers["location"].endswith("?done=left")
    page = ana.request(f"/participants/{pals.maya.id}?done=left").text
    assert "Has left the program." in page
    store = relay.context().store
    maya = store.participant(pals.maya.id)
    assert maya is not None and maya.status == "left"
    (entry,) = [e for e in store.audit_log() if e["event"] == "left"]
    assert (entry["participant"], entry["by"], entry["via"]) == (pals.maya.id, MODERATOR_A, "web")
