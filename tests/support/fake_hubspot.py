"""An in-process HubSpot CRM behind `responses`: the v3 object and v4 association shapes the
HubSpot target uses (contacts and deals batch/upsert, line_items batch create/read/archive,
deal GET/PATCH, deal associations). Errors have HubSpot's body
({"status": "error", "message", "correlationId", "category"}).

Fault knobs: `script` (the next calls answer (status, category) or raise an exception),
`lose_answer_of` (a path suffix such as "deals/batch/upsert": carried out, answer lost).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
import responses

HUBSPOT_URL = "https://api.hubapi.com"
TOKEN = "pat-na1-11111111-2222"


def hubspot_error(status: int, category: str, message: str) -> tuple[int, dict[str, str], str]:
    body = {"status": "error", "message": message, "correlationId": "5d3a1c6e-0000-4000-8000-000000000000",
            "category": category}
    headers = {"Retry-After": "1"} if status == 429 else {}
    return status, headers, json.dumps(body)


class FakeHubSpot:
    def __init__(self, mock: responses.RequestsMock, url: str = HUBSPOT_URL, *, token: str = TOKEN):
        self.url, self.token = url, token
        self.lock = threading.Lock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "deals": {}, "line_items": {}}
        self.deal_contacts: dict[str, set[str]] = {}
        self.deal_lines: dict[str, list[str]] = {}
        self.changes: list[tuple[str, Any]] = []
        self.script: list[Any] = []
        self.lose_answer_of: str | None = None
        self.lose_every = 0  # every Nth deal upsert is carried out and its answer lost
        self.lost = 0
        self._upserts = 0
        self.next_id = 1000
        self.unique_property = "order_gateway_key"
        self.revoke_every = 0  # after every Nth accepted request the token is replaced (an OAuth2 rotation)
        self._accepted = 0
        self.token_url = url + "/oauth/v1/token"
        self.tokens_issued = 0
        mock.add_callback(responses.POST, self.token_url, callback=self._issue_token)
        for method in (responses.GET, responses.POST, responses.PUT, responses.PATCH):
            mock.add_callback(method, re.compile(re.escape(url) + r"/crm/.*"), callback=self._handle)

    def deals(self) -> list[dict[str, Any]]:
        return [d["properties"] for d in self.objects["deals"].values()]

    def lines_of(self, deal: str) -> list[tuple[str, float]]:
        items = [self.objects["line_items"][i]["properties"] for i in self.deal_lines.get(deal, [])]
        return [(p["hs_sku"], float(p["quantity"])) for p in items]

    def _issue_token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        """The OAuth2 token endpoint (client credentials): hands out the token the API accepts now."""
        with self.lock:
            form = dict(pair.split("=", 1) for pair in str(request.body or "").split("&") if "=" in pair)
            if form.get("grant_type") != "client_credentials" or not request.headers.get("Authorization", "").startswith("Basic "):
                return 400, {}, json.dumps({"error": "invalid_client"})
            self.tokens_issued += 1
            return 200, {}, json.dumps({"access_token": self.token, "token_type": "bearer", "expires_in": 1800})

    def _new(self, kind: str, properties: dict[str, str]) -> str:
        self.next_id += 1
        oid = str(self.next_id)
        self.objects[kind][oid] = {"id": oid, "properties": dict(properties), "archived": False}
        return oid

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with self.lock:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return hubspot_error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
            self._accepted += 1
            if self.revoke_every and self._accepted % self.revoke_every == 0:
                self.token = f"T-{self._accepted}"  # the next request with the old token gets 401
            if self.script:
                step = self.script.pop(0)
                if isinstance(step, Exception):
                    raise step
                return hubspot_error(*step, "scripted")
            path = urlsplit(request.url or "").path
            body = json.loads(request.body) if request.body else {}
            answer = self._route(request.method or "", path, body)
            if path.endswith("deals/batch/upsert") and self.lose_every:
                self._upserts += 1
                if self._upserts % self.lose_every == 0:
                    self.lose_answer_of = "deals/batch/upsert"
            if self.lose_answer_of and path.endswith(self.lose_answer_of):
                self.lose_answer_of = None
                self.lost += 1
                raise requests.exceptions.ReadTimeout("the answer was lost after the commit")
            if isinstance(answer, tuple):
                return answer
            return 200, {}, json.dumps(answer)

    def _route(self, method: str, path: str, body: dict[str, Any]) -> Any:
        if m := re.fullmatch(r"/crm/v3/properties/deals/([a-z0-9_]+)", path):
            name = m.group(1)
            return {"name": name, "label": name, "type": "string", "fieldType": "text", "groupName": "dealinformation",
                    "hasUniqueValue": name == self.unique_property}
        if m := re.fullmatch(r"/crm/v3/objects/(contacts|deals)/batch/upsert", path):
            return self._upsert(m.group(1), body["inputs"])
        if path == "/crm/v3/objects/line_items/batch/create":
            return self._create_lines(body["inputs"])
        if path == "/crm/v3/objects/line_items/batch/read":
            return {"status": "COMPLETE", "results": [self.objects["line_items"][i["id"]] for i in body["inputs"]]}
        if path == "/crm/v3/objects/line_items/batch/archive":
            for i in body["inputs"]:
                self.objects["line_items"][i["id"]]["archived"] = True
                for ids in self.deal_lines.values():
                    if i["id"] in ids:
                        ids.remove(i["id"])
            return {}
        if m := re.fullmatch(r"/crm/v4/objects/deals/(\d+)/associations/default/contacts/(\d+)", path):
            self.deal_contacts.setdefault(m.group(1), set()).add(m.group(2))
            return {"status": "COMPLETE", "results": []}
        if m := re.fullmatch(r"/crm/v4/objects/deals/(\d+)/associations/line_items", path):
            ids = self.deal_lines.get(m.group(1), [])
            return {"results": [{"toObjectId": int(i), "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 19, "label": None}]} for i in ids]}
        if m := re.fullmatch(r"/crm/v3/objects/deals/(\d+)", path):
            deal = self.objects["deals"].get(m.group(1))
            if deal is None:
                return hubspot_error(404, "OBJECT_NOT_FOUND", "resource not found")
            if method == "PATCH":
                if body["properties"].get("dealstage") == "closedlost":
                    self.changes.append(("cancel", None))
                deal["properties"].update(body["properties"])
            return deal
        return hubspot_error(404, "OBJECT_NOT_FOUND", f"no route {method} {path}")

    def _upsert(self, kind: str, inputs: list[dict[str, Any]]) -> Any:
        results = []
        for item in inputs:
            prop = item["idProperty"]
            if kind == "deals" and prop != self.unique_property:
                return hubspot_error(400, "VALIDATION_ERROR", f"Property {prop} is not a unique identifier")
            found = next((oid for oid, o in self.objects[kind].items() if o["properties"].get(prop) == item["id"]), None)
            if found is None:
                oid, new = self._new(kind, {prop: item["id"], **item["properties"]}), True
            else:
                oid, new = found, False
                self.objects[kind][oid]["properties"].update(item["properties"])
            results.append({**self.objects[kind][oid], "new": new})
        return {"status": "COMPLETE", "results": results}

    def _create_lines(self, inputs: list[dict[str, Any]]) -> Any:
        deals = {str(item["associations"][0]["to"]["id"]) for item in inputs}
        for deal in deals:
            if deal not in self.objects["deals"]:
                return hubspot_error(400, "VALIDATION_ERROR", f"deal {deal} does not exist")
        # a deal that had lines before (archived by an update) is being changed
        changed = {d for d in deals if any(o.get("deal") == d for o in self.objects["line_items"].values())}
        results = []
        for item in inputs:
            (association,) = item["associations"]
            assert association["types"][0]["associationTypeId"] == 20
            deal = str(association["to"]["id"])
            oid = self._new("line_items", item["properties"])
            self.objects["line_items"][oid]["deal"] = deal
            self.deal_lines.setdefault(deal, []).append(oid)
            results.append(self.objects["line_items"][oid])
        for deal in sorted(changed):
            self.changes.append(("update", {"lines": self.lines_of(deal)}))
        return {"status": "COMPLETE", "results": results}
