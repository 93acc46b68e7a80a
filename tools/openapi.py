#!/usr/bin/env python3
"""Builds the Switchboard OpenAPI 3.1 document; writes /tmp/openapi.json and the Swift file."""
import json
import os
import sys

R = "#/components/"


def ref(kind, name):
    return {"$ref": f"{R}{kind}/{name}"}


def s(name):
    return ref("schemas", name)


def nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


NULL_STR = {"type": ["string", "null"]}
TIMESTAMP = s("Timestamp")
NULL_TS = nullable(TIMESTAMP)


def json_body(schema, description=None, example=None):
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    body = {"required": True, "content": {"application/json": media}}
    if description:
        body["description"] = description
    return body


def ok_json(description, schema, example=None):
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"application/json": media}}


def err(description, headers=None):
    response = {"description": description, "content": {"application/json": {"schema": s("Error")}}}
    if headers:
        response["headers"] = headers
    return response


def resp(name):
    return ref("responses", name)


RETRY_AFTER = {"Retry-After": ref("headers", "RetryAfter")}

# ---------------------------------------------------------------- schemas

schemas = {
    "Error": {
        "type": "object",
        "description": "Every error answer (except /readyz, which answers a status object). `message` is for humans: it names fields and reasons, never values (they may be PHI).",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Machine-readable reason: bad_request, invalid_payload, unauthorized, invalid_signature, forbidden, not_found, conflict, payload_too_large, unsupported_media_type, upgrade_required, channel_disabled, store_unavailable, internal_error (also method_not_allowed, too_many_requests, unavailable or error for other statuses).",
                        "examples": ["not_found"],
                    },
                    "message": {"type": "string", "examples": ["no such conversation"]},
                },
            }
        },
        "example": {"error": {"code": "not_found", "message": "no such conversation"}},
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    },
    "Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 in UTC; `.sss` only when the milliseconds are not zero.",
        "examples": ["2026-11-29T10:00:00Z", "2026-11-29T10:07:12.250Z"],
    },
    "Channel": {"type": "string", "enum": ["email", "sms", "chat", "portal"]},
    "ConversationStatus": {
        "type": "string",
        "enum": ["open", "pending", "snoozed", "resolved"],
        "description": "`pending` means waiting on the patient.",
    },
    "Priority": {"type": "string", "enum": ["emergency", "urgent", "normal", "low"]},
    "MessageDirection": {
        "type": "string",
        "enum": ["inbound", "outbound", "note"],
        "description": "`inbound` from the patient, `outbound` an agent's (or Switchboard's) message to the patient, `note` an internal note never sent to the patient.",
    },
    "DeliveryStatus": {"type": "string", "enum": ["queued", "sent", "delivered", "failed"]},
    "IdentityKind": {"type": "string", "enum": ["email", "phone", "portal", "chat"]},
    "AgentRole": {"type": "string", "enum": ["agent", "supervisor", "admin"]},
    "Presence": {
        "type": "string",
        "enum": ["online", "away", "offline"],
        "description": "Only `online` agents receive offers; `away` agents keep their conversations; `offline` agents may hand back the ones still waiting for a first reply.",
    },
    "RoutingPolicy": {
        "type": "string",
        "enum": ["least-loaded", "round-robin", "manual"],
        "description": "`least-loaded`: lowest load relative to capacity on the conversation's channel; `round-robin`: the next eligible agent after the last one chosen; `manual`: nobody is offered anything, agents claim from the queue.",
    },
    "Conversation": {
        "type": "object",
        "required": ["id", "status", "priority", "intent", "language", "channel", "assignee_id", "team_id",
                     "contact_id", "created_at", "updated_at", "last_message_at", "first_response_due_at",
                     "first_response_at", "next_response_due_at"],
        "properties": {
            "id": {"type": "string"},
            "status": s("ConversationStatus"),
            "priority": s("Priority"),
            "intent": {"type": ["string", "null"], "description": "Triage's intent label, or null before triage."},
            "language": {"type": ["string", "null"], "description": "Triage's language, or null before triage."},
            "channel": s("Channel"),
            "assignee_id": {"type": ["string", "null"], "description": "The agent holding it, or null."},
            "team_id": {"type": ["string", "null"], "description": "The team queue, or null."},
            "contact_id": {"type": "string"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "last_message_at": TIMESTAMP,
            "first_response_due_at": {"type": ["string", "null"], "format": "date-time",
                                      "description": "When the first reply is due (the routing SLA), or null before routing."},
            "first_response_at": {"type": ["string", "null"], "format": "date-time",
                                  "description": "When an agent first replied since the conversation (re)opened, or null."},
            "next_response_due_at": {"type": ["string", "null"], "format": "date-time",
                                     "description": "After the patient wrote again following a reply: when the next reply is due; null otherwise."},
        },
    },
    "ConversationEnvelope": {
        "type": "object",
        "required": ["conversation"],
        "properties": {"conversation": s("Conversation")},
    },
    "ConversationList": {
        "type": "object",
        "required": ["conversations"],
        "properties": {"conversations": {"type": "array", "items": s("Conversation")}},
    },
    "Identity": {
        "type": "object",
        "required": ["kind", "value"],
        "properties": {
            "kind": s("IdentityKind"),
            "value": {"type": "string", "description": "portal patient id, E.164 phone number, lower-cased email, or chat id"},
        },
    },
    "Contact": {
        "type": "object",
        "required": ["id", "name", "identities"],
        "properties": {
            "id": {"type": "string"},
            "name": NULL_STR,
            "identities": {"type": "array", "items": s("Identity")},
        },
    },
    "Attachment": {
        "type": "object",
        "description": "Media of a message: a reference (MMS, portal: `url`) or bytes Switchboard keeps (email: `id` and `download_url`). Fields that are unknown are left out.",
        "properties": {
            "id": {"type": "integer", "format": "int64", "description": "Kept bytes only (email attachments)."},
            "download_url": {"type": "string", "description": "Kept bytes only: the path of getAttachment for this attachment."},
            "url": {"type": "string"},
            "content_type": {"type": "string"},
            "filename": {"type": "string"},
            "size_bytes": {"type": "integer", "format": "int64"},
        },
    },
    "Triage": {
        "type": "object",
        "description": "An inbound message's triage labels and the evidence behind them.",
        "required": ["intent", "urgency", "language", "evidence"],
        "properties": {
            "intent": {"type": "string", "examples": ["appointment_new"]},
            "urgency": {"type": "string", "examples": ["routine"]},
            "language": {"type": "string", "examples": ["en"]},
            "evidence": {"description": "The stored evidence, passed through as JSON (usually an object)."},
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "direction", "channel", "sender_agent_id", "text", "sent_at", "created_at",
                     "delivery_status", "failure_reason", "attachments", "triage"],
        "properties": {
            "id": {"type": "string"},
            "direction": s("MessageDirection"),
            "channel": s("Channel"),
            "sender_agent_id": {"type": ["string", "null"], "description": "The agent who wrote an outbound message or note; null otherwise."},
            "text": {"type": "string"},
            "sent_at": {"allOf": [TIMESTAMP], "description": "When the patient (inbound) or the agent (outbound, note) sent it."},
            "created_at": {"allOf": [TIMESTAMP], "description": "When Switchboard stored it."},
            "delivery_status": {"anyOf": [s("DeliveryStatus"), {"type": "null"}], "description": "Outbound only; null for inbound messages and notes."},
            "failure_reason": {"type": ["string", "null"], "description": "Why an outbound message `failed`; otherwise null."},
            "attachments": {"type": "array", "items": s("Attachment")},
            "triage": {"anyOf": [s("Triage"), {"type": "null"}]},
            "email": {"anyOf": [s("EmailFacts"), {"type": "null"}], "description": "Email messages only; null otherwise."},
        },
    },
    "EmailFacts": {
        "type": "object",
        "description": "A mail message's own facts. `text` of the message holds the new part of the reply; what it quoted is in `quoted`.",
        "required": ["subject", "from", "message_id", "quoted", "html", "auto_reply"],
        "properties": {
            "subject": NULL_STR,
            "from": {"type": ["string", "null"], "description": "The From address."},
            "message_id": {"type": "string", "description": "The RFC 5322 Message-ID (ours for outbound mail)."},
            "quoted": {"type": ["string", "null"], "description": "Quoted history and signature split off the reply."},
            "html": {"type": ["string", "null"], "description": "The HTML part, sanitised (allow-listed tags and attributes, no scripts, no remote images). Render only in a sandbox."},
            "auto_reply": {"type": ["string", "null"], "description": "Why the message was recognised as automatic: `auto_submitted`, `autoreply_header`, `precedence` or `list_mail`. Such messages are triaged and routed, but never answered automatically."},
        },
    },
    "ConversationSMS": {
        "type": "object",
        "description": "The SMS side of a conversation: the patient's number and whether it may be texted.",
        "required": ["number", "opted_out", "consent_keyword", "consent_changed_at"],
        "properties": {
            "number": {"type": "string", "description": "E.164"},
            "opted_out": {"type": "boolean", "description": "True after STOP (and until START): replies are refused with 409."},
            "consent_keyword": {"type": ["string", "null"], "description": "The keyword of the last consent change (e.g. STOP, START)."},
            "consent_changed_at": NULL_TS,
        },
    },
    "ConversationDetail": {
        "type": "object",
        "required": ["conversation", "contact", "messages", "tags", "required_skills"],
        "properties": {
            "conversation": s("Conversation"),
            "contact": s("Contact"),
            "messages": {"type": "array", "items": s("Message"), "description": "Oldest first."},
            "sms": {"allOf": [s("ConversationSMS")], "description": "Present only for SMS conversations (left out otherwise)."},
            "tags": {"type": "array", "items": {"type": "string"}},
            "required_skills": {"type": "array", "items": {"type": "string"}},
        },
    },
    "SMSInfo": {
        "type": "object",
        "description": "What the patient's phone will receive (the notice text in notify-only mode).",
        "required": ["encoding", "segments", "units"],
        "properties": {
            "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
            "segments": {"type": "integer"},
            "units": {"type": "integer", "description": "Septets for GSM-7, UTF-16 code units for UCS-2."},
        },
    },
    "ReplyAccepted": {
        "type": "object",
        "required": ["message_id", "delivery_status", "warnings"],
        "properties": {
            "message_id": {"type": "string"},
            "delivery_status": s("DeliveryStatus"),
            "sms": {"allOf": [s("SMSInfo")], "description": "Present only for SMS conversations."},
            "warnings": {"type": "array", "items": {"type": "string"},
                         "description": "E.g. the reply takes more than `sms.segment_warning` SMS segments; empty otherwise."},
        },
        "example": {"delivery_status": "queued", "message_id": "msg_0b8f", "warnings": []},
    },
    "NoteCreated": {
        "type": "object",
        "required": ["message_id"],
        "properties": {"message_id": {"type": "string", "description": "The note's id (a message with direction `note`)."}},
    },
    "ChannelCounts": {
        "type": "object",
        "description": "Per channel (email, sms, chat, portal): a whole number.",
        "propertyNames": s("Channel"),
        "additionalProperties": {"type": "integer"},
    },
    "Agent": {
        "type": "object",
        "required": ["id", "name", "email", "role", "teams", "skills", "languages", "capacity", "load",
                     "presence", "presence_changed_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "role": s("AgentRole"),
            "teams": {"type": "array", "items": {"type": "string"}, "description": "Team names, sorted."},
            "skills": {"type": "array", "items": {"type": "string"}},
            "languages": {"type": "array", "items": {"type": "string"}},
            "capacity": {"allOf": [s("ChannelCounts")], "description": "Conversations the agent may hold at once, per channel."},
            "load": {"allOf": [s("ChannelCounts")], "description": "Conversations the agent holds now, per channel (channels with none are left out)."},
            "presence": s("Presence"),
            "presence_changed_at": NULL_TS,
        },
    },
    "AgentEnvelope": {"type": "object", "required": ["agent"], "properties": {"agent": s("Agent")}},
    "AgentList": {
        "type": "object",
        "required": ["agents"],
        "properties": {"agents": {"type": "array", "items": s("Agent")}},
    },
    "Team": {
        "type": "object",
        "required": ["id", "name", "policy", "auto_accept", "overflow"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "policy": s("RoutingPolicy"),
            "auto_accept": {"type": "boolean", "description": "Offers to this team's agents become assignments at once."},
            "overflow": {"type": ["string", "null"],
                         "description": "Where a conversation may also go once its first-response SLA is breached: `language` (any agent speaking its language) or `team:<team id>`; null for none."},
        },
    },
    "TeamEnvelope": {"type": "object", "required": ["team"], "properties": {"team": s("Team")}},
    "TeamList": {
        "type": "object",
        "required": ["teams"],
        "properties": {"teams": {"type": "array", "items": s("Team"), "description": "Sorted by name."}},
    },
    "RoutingCandidate": {
        "type": "object",
        "required": ["agent_id", "eligible", "reasons", "load"],
        "properties": {
            "agent_id": {"type": "string"},
            "eligible": {"type": "boolean"},
            "reasons": {"type": "array", "items": {"type": "string"}, "description": "Why the agent was passed over (e.g. `away`, `missing skill …`, `at sms capacity (5/5)`, `not chosen by least-loaded`); empty for the winner."},
            "load": {"type": ["number", "null"], "description": "Load relative to capacity on the conversation's channel (1 at capacity, or with no capacity there)."},
        },
    },
    "RoutingDecision": {
        "type": "object",
        "required": ["at", "trigger", "outcome", "agent_id", "rule", "candidates", "candidates_omitted"],
        "properties": {
            "at": TIMESTAMP,
            "trigger": {"type": "string",
                        "enum": ["arrived", "declined", "offer_expired", "agent_available", "escalated", "transferred",
                                 "handed_back", "offer_withdrawn", "restored"],
                        "description": "Why routing looked at the conversation."},
            "outcome": {"type": "string", "enum": ["offered", "assigned", "queued"]},
            "agent_id": NULL_STR,
            "rule": {"type": "string", "description": "The rule that chose (`sticky`, `least-loaded`, `round-robin`, `manual`, `transfer`, `claim`), or why nobody was chosen."},
            "candidates": {"type": "array", "items": s("RoutingCandidate")},
            "candidates_omitted": {"type": "integer", "description": "Passed-over candidates not recorded (a decision records at most 50)."},
        },
    },
    "RoutingLog": {
        "type": "object",
        "required": ["conversation_id", "decisions"],
        "properties": {
            "conversation_id": {"type": "string"},
            "decisions": {"type": "array", "items": s("RoutingDecision"), "description": "Oldest first."},
        },
    },
    "QueuePosition": {
        "type": "object",
        "required": ["conversation_id", "queued", "position", "estimated_wait_seconds"],
        "properties": {
            "conversation_id": {"type": "string"},
            "queued": {"type": "boolean", "description": "False when the conversation is offered, assigned, resolved or not routed yet (e.g. waiting for triage)."},
            "position": {"type": ["integer", "null"], "description": "Place in its queue; null when not queued."},
            "estimated_wait_seconds": {"type": ["integer", "null"], "description": "Null when not queued or no estimate can be made."},
        },
    },
    "ReplyRequest": {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1,
                     "description": "Plain text; not only whitespace; at most 32768 bytes of UTF-8 (413 beyond)."},
        },
    },
    "PresenceRequest": {
        "type": "object",
        "required": ["presence"],
        "properties": {"presence": s("Presence")},
    },
    "TransferRequest": {
        "type": "object",
        "description": "Exactly one of `to_agent` and `to_team` (a null or blank value counts as absent); otherwise 400.",
        "oneOf": [
            {"required": ["to_agent"], "properties": {"to_agent": {"type": "string", "pattern": "\\S"}}},
            {"required": ["to_team"], "properties": {"to_team": {"type": "string", "pattern": "\\S"}}},
        ],
        "properties": {
            "to_agent": {"type": ["string", "null"], "description": "An active agent's id: the conversation is assigned to them directly (even above their capacity)."},
            "to_team": {"type": ["string", "null"], "description": "A team name or id: the conversation joins that team's queue."},
            "note": {"type": ["string", "null"], "description": "An internal note recorded with the transfer; at most 16384 bytes (413 beyond)."},
        },
        "example": {"to_team": "billing", "note": "Question about an invoice"},
    },
    "NoteRequest": {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1,
                     "description": "Trimmed; must not be blank (400); at most 16384 bytes (413 beyond)."},
        },
    },
    "AgentUpdate": {
        "type": "object",
        "description": "Fields left out stay as they are. Unknown fields are a 400.",
        "additionalProperties": False,
        "properties": {
            "role": s("AgentRole"),
            "skills": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64},
                       "description": "Replaces the skills (trimmed, lower-cased, deduplicated). At most 100 strings of at most 64 bytes."},
            "languages": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64},
                          "description": "Replaces the languages (trimmed, lower-cased, deduplicated). At most 100 strings of at most 64 bytes."},
            "capacity": {
                "type": "object",
                "description": "Replaces the capacity: channel to a whole number from 0 to 1000.",
                "propertyNames": s("Channel"),
                "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 1000},
            },
            "teams": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64},
                      "description": "Replaces the agent's teams (names or ids); teams that do not exist are created."},
        },
        "example": {"role": "supervisor", "skills": ["billing"], "languages": ["en", "es"], "capacity": {"sms": 5, "portal": 8},
                    "teams": ["front-desk"]},
    },
    "AgentCreate": {
        "type": "object",
        "description": "A new agent. Unknown fields are a 400.",
        "additionalProperties": False,
        "required": ["name", "email"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "maxLength": 320, "description": "Unique (case-insensitive)."},
            "role": s("AgentRole"),
            "teams": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}},
            "skills": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}},
            "languages": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}},
            "capacity": {"type": "object", "propertyNames": s("Channel"),
                         "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 1000}},
        },
        "example": {"name": "Ana Ruiz", "email": "ana.ruiz@clinic.example", "role": "agent", "teams": ["front-desk"],
                    "languages": ["en", "es"]},
    },
    "AgentCreated": {
        "type": "object", "required": ["agent", "token"],
        "properties": {"agent": s("Agent"),
                       "token": {"type": "string", "description": "The agent's API token, shown this once (only its SHA-256 digest is stored)."}},
    },
    "TeamUpdate": {
        "type": "object",
        "description": "Fields left out stay as they are (a new team gets least-loaded, no auto-accept, no overflow). Unknown fields are a 400.",
        "additionalProperties": False,
        "properties": {
            "policy": s("RoutingPolicy"),
            "auto_accept": {"type": "boolean"},
            "overflow": {"type": ["string", "null"], "minLength": 1,
                         "description": "`language`, another existing team's name or id (not this team), or null to remove the overflow."},
        },
        "example": {"policy": "round-robin", "auto_accept": False, "overflow": "language"},
    },
    "PortalInboundEvent": {
        "type": "object",
        "required": ["type", "patient", "message"],
        "properties": {
            "type": {"type": "string", "const": "message.created"},
            "patient": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "description": "The portal's patient id (at most 256 bytes)."},
                    "name": {"type": "string"},
                    "phone": {"type": "string", "description": "Normalised to E.164 (national numbers use phone.default_country_code); an invalid number is a 400."},
                    "email": {"type": "string", "description": "Compared lower-cased."},
                },
            },
            "thread_id": {"type": "string", "description": "The portal's thread id (at most 256 bytes). Without it the message joins the contact's latest unresolved portal conversation."},
            "message": {
                "type": "object",
                "required": ["id", "text", "sent_at"],
                "properties": {
                    "id": {"type": "string", "description": "The portal's message id (at most 256 bytes)."},
                    "text": {"type": "string"},
                    "sent_at": {"type": "string", "format": "date-time", "description": "RFC 3339 / ISO 8601."},
                },
            },
        },
        "example": {
            "type": "message.created",
            "patient": {"id": "P-1001", "name": "Alex Example", "phone": "+1 555 010 0100", "email": "Alex.Example@example.org"},
            "thread_id": "T-1",
            "message": {"id": "M-1", "text": "Could my appointment on Thursday be moved to the afternoon?", "sent_at": "2026-11-29T10:00:00Z"},
        },
    },
    "PortalAccepted": {
        "type": "object",
        "description": "`portal.acknowledge: stored` (the default): the stored message's ids.",
        "required": ["conversation_id", "message_id"],
        "properties": {"conversation_id": {"type": "string"}, "message_id": {"type": "string"}},
    },
    "PortalQueued": {
        "type": "object",
        "description": "`portal.acknowledge: received`: the delivery is committed to the inbound queue and will be stored once.",
        "required": ["status", "webhook_id"],
        "properties": {"status": {"type": "string", "enum": ["queued"]}, "webhook_id": {"type": "string"}},
    },
    "TwilioMessageForm": {
        "type": "object",
        "description": "Twilio's incoming-message parameters (others are accepted and ignored, but are covered by the signature).",
        "required": ["From", "To"],
        "properties": {
            "MessageSid": {"type": "string", "maxLength": 64, "description": "The dedupe key (SmsSid is accepted instead)."},
            "SmsSid": {"type": "string"},
            "From": {"type": "string", "description": "The patient's number; must normalise to E.164."},
            "To": {"type": "string"},
            "Body": {"type": "string", "description": "May be empty only when there is media."},
            "NumMedia": {"type": "string", "description": "Number of media items (at most 10 are read)."},
        },
        "patternProperties": {
            "^MediaUrl[0-9]$": {"type": "string", "description": "http(s) URL of one media item, stored as an attachment reference."},
            "^MediaContentType[0-9]$": {"type": "string"},
        },
        "additionalProperties": {"type": "string"},
    },
    "TwilioStatusForm": {
        "type": "object",
        "description": "Twilio's status callback parameters (others are accepted and ignored).",
        "properties": {
            "MessageSid": {"type": "string", "description": "SmsSid is accepted instead."},
            "SmsSid": {"type": "string"},
            "MessageStatus": {
                "type": "string",
                "enum": ["accepted", "scheduled", "queued", "sending", "sent", "delivered", "read", "undelivered", "failed", "canceled"],
                "description": "Maps to delivery_status: accepted/scheduled/queued to queued, sending/sent to sent, delivered/read to delivered, undelivered/failed/canceled to failed. SmsStatus is accepted instead.",
            },
            "SmsStatus": {"type": "string"},
            "ErrorCode": {"type": "string", "description": "Twilio error code; described in the failure_reason of a failed message."},
        },
        "additionalProperties": {"type": "string"},
    },
}

# ---------------------------------------------------------------- shared components

parameters = {
    "ConversationId": {
        "name": "id", "in": "path", "required": True,
        "description": "Conversation id (at most 64 bytes; longer is a 404).",
        "schema": {"type": "string", "maxLength": 64},
    },
    "AgentId": {
        "name": "agent", "in": "path", "required": True,
        "description": "Agent id (at most 64 bytes; longer is a 404).",
        "schema": {"type": "string", "maxLength": 64},
    },
    "TeamName": {
        "name": "team", "in": "path", "required": True,
        "description": "Team name: created when no team has this name (at most 64 bytes; longer is a 404).",
        "schema": {"type": "string", "maxLength": 64},
    },
    "KannelSecret": {
        "name": "secret", "in": "query", "required": False,
        "description": "kannel.shared_secret, compared in constant time. Not needed from an address in kannel.allowed_sources.",
        "schema": {"type": "string"},
    },
}

headers = {
    "WWWAuthenticate": {
        "description": "`Bearer` when the token is missing or malformed; `Bearer error=\"invalid_token\"` when it is unknown or revoked.",
        "schema": {"type": "string"},
    },
    "RetryAfter": {"description": "Seconds to wait before retrying (5).", "schema": {"type": "integer"}},
}

responses = {
    "BadRequest": err("`bad_request`: the body is not a JSON object, or a field or query parameter is missing or invalid (named in the message)."),
    "Unauthorized": err("`unauthorized`: missing, malformed, unknown or revoked bearer token.",
                        {"WWW-Authenticate": ref("headers", "WWWAuthenticate")}),
    "Forbidden": err("`forbidden`: the caller's role may not do this; the message names the role needed."),
    "NotFound": err("`not_found`: unknown id, or a conversation the caller may not see (indistinguishable from an unknown one)."),
    "Conflict": err("`conflict`: the change contradicts the conversation's state (the message says why)."),
    "PayloadTooLarge": err("`payload_too_large`: the body, or a text field, is over its limit."),
    "UnsupportedMediaType": err("`unsupported_media_type`: the body is not sent as `application/json`."),
    "InternalError": err("`internal_error`: the request could not be completed (e.g. the store failed); see the daemon's log."),
}

API_ERRORS = {"401": resp("Unauthorized"), "500": resp("InternalError")}


def api(responses_, **kwargs):
    out = dict(responses_)
    out.update(API_ERRORS)
    return out


def op(op_id, summary, tag, responses_, description=None, parameters_=None, body=None, security=None):
    operation = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters_:
        operation["parameters"] = parameters_
    if body:
        operation["requestBody"] = body
    operation["responses"] = responses_
    if security is not None:
        operation["security"] = security
    return operation


CONV_PARAM = [ref("parameters", "ConversationId")]
CONV_OK = ok_json("The conversation.", s("ConversationEnvelope"))
AGENT_OK = ok_json("The agent.", s("AgentEnvelope"))

webhook_common = {
    "503": err("`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
               RETRY_AFTER),
}

paths = {}

# ---------------------------------------------------------------- operational

paths["/healthz"] = {"get": op(
    "getHealth", "Liveness", "operational",
    {"200": ok_json("The process is running and serving HTTP.", s("Status"), {"status": "ok"})},
    description="No bearer token. Keep off the public side of the reverse proxy.", security=[])}

paths["/readyz"] = {"get": op(
    "getReadiness", "Readiness", "operational",
    {"200": ok_json("The listener is bound and the store answers.", s("Status"), {"status": "ready"}),
     "503": ok_json("Not ready: `{\"status\":\"not ready\"}` before the listener is bound, `{\"status\":\"store unavailable\"}` when the store does not answer. (A status object, not the error shape.)",
                    s("Status"), {"status": "store unavailable"})},
    description="No bearer token. On shutdown the listener closes first, so a load balancer sees connection refused.",
    security=[])}

paths["/metrics"] = {"get": op(
    "getMetrics", "Prometheus metrics", "operational",
    {"200": {"description": "Prometheus text exposition format (version 0.0.4). Labels have bounded values only: no ids, no patient data.",
             "content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}}}},
    description="No bearer token. See docs/API.md, Metrics.", security=[])}

paths["/api/v1/openapi.json"] = {"get": op(
    "getOpenAPIDocument", "This OpenAPI document", "operational",
    {"200": {"description": "The OpenAPI 3.1 description of every HTTP route.",
             "content": {"application/json": {"schema": {"type": "object"}}}}},
    description="No bearer token.", security=[])}

# ---------------------------------------------------------------- webhooks

paths["/webhooks/portal"] = {"post": op(
    "receivePortalWebhook", "Inbound patient message from the portal", "webhooks",
    {
        "202": ok_json("Stored (committed) — or the same `webhook-id` was seen before and this is the first answer again. "
                       "With `portal.acknowledge: received`: committed to the inbound queue (`PortalQueued`, repeats too).",
                       {"oneOf": [s("PortalAccepted"), s("PortalQueued")]}, {"conversation_id": "cnv_…", "message_id": "msg_…"}),
        "400": err("`invalid_payload`: invalid JSON, missing or malformed field, unsupported `type`, invalid `patient.phone` (the message names the field); `bad_request`: `webhook-id` longer than 256 bytes."),
        "401": err("`invalid_signature`: missing `webhook-id`/`webhook-timestamp`/`webhook-signature`, no matching `v1` signature, or timestamp outside `portal.timestamp_tolerance_seconds`."),
        "409": err("`conflict`: `thread_id` already belongs to another patient's conversation (`portal.acknowledge: stored` only)."),
        "413": err("`payload_too_large`: body over `portal.max_body_bytes` (default 262144)."),
        "415": err("`unsupported_media_type`: Content-Type is not application/json."),
        **webhook_common,
    },
    description=("Standard Webhooks: `webhook-signature` is `v1,<base64 HMAC-SHA256(key, \"<webhook-id>.<webhook-timestamp>.<body>\")>` "
                 "with the base64-decoded part of the `whsec_` secret as key; several space-separated signatures are accepted. "
                 "Checks in order, each answering before anything is stored: channel configured (503), content type (415), size (413), "
                 "signature and timestamp (401), payload (400). `202` is sent only after the commit; retry anything else with the same "
                 "`webhook-id`. See channels/portal/README.md."),
    parameters_=[
        {"name": "webhook-id", "in": "header", "required": True,
         "description": "The delivery's id; the idempotency key (reuse it on every retry). At most 256 bytes.",
         "schema": {"type": "string", "maxLength": 256}},
        {"name": "webhook-timestamp", "in": "header", "required": True,
         "description": "Unix seconds when this attempt was signed.", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        {"name": "webhook-signature", "in": "header", "required": True,
         "description": "`v1,<base64 signature>`, one or more separated by single spaces.", "schema": {"type": "string"}},
    ],
    body=json_body(s("PortalInboundEvent")),
    security=[])}

TWILIO_SIG = {"name": "X-Twilio-Signature", "in": "header", "required": True,
              "description": "base64 HMAC-SHA1 with twilio.auth_token over the URL Twilio called (twilio.public_url + path and query) followed by each POST parameter name and value in name order.",
              "schema": {"type": "string"}}
FORM_415 = err("`unsupported_media_type`: Content-Type is not application/x-www-form-urlencoded.")
TWILIO_403 = err("`invalid_signature`: X-Twilio-Signature missing or wrong. Nothing is stored.")

paths["/webhooks/sms/twilio"] = {"post": op(
    "receiveTwilioMessage", "Inbound SMS/MMS from Twilio", "webhooks",
    {
        "200": {"description": "Stored (committed), or the same MessageSid was seen before. An empty TwiML answer.",
                "content": {"text/xml; charset=utf-8": {"schema": {"type": "string"},
                                                         "example": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"}}},
        "400": err("`invalid_payload`: unparseable form; MessageSid, From or To missing; From not a phone number; no Body and no media."),
        "403": TWILIO_403,
        "413": err("`payload_too_large`: body over 65536 bytes."),
        "415": FORM_415,
        **webhook_common,
    },
    description="Twilio's *A message comes in* webhook. STOP/START/HELP keywords update the number's SMS consent. See channels/sms/README.md.",
    parameters_=[TWILIO_SIG],
    body={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": s("TwilioMessageForm")}}},
    security=[])}

paths["/webhooks/sms/twilio/status"] = {"post": op(
    "receiveTwilioStatus", "Twilio delivery status callback", "webhooks",
    {
        "204": {"description": "Recorded (a report for an unknown message is accepted and ignored; a report never moves a status back)."},
        "400": err("`invalid_payload`: unparseable form; MessageSid or MessageStatus missing; unknown MessageStatus."),
        "403": TWILIO_403,
        "413": err("`payload_too_large`: body over 65536 bytes."),
        "415": FORM_415,
        **webhook_common,
    },
    description="The StatusCallback Switchboard sets on each message it sends through Twilio; signed like the message webhook.",
    parameters_=[TWILIO_SIG],
    body={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": s("TwilioStatusForm")}}},
    security=[])}

KANNEL_403 = err("`forbidden`: the secret is missing or wrong and the source address is not in kannel.allowed_sources.")
KANNEL_200 = {"description": "Stored (committed), or Kannel's message id was seen before. An empty body, so that Kannel sends no SMS back.",
              "content": {"text/plain; charset=utf-8": {"schema": {"type": "string", "maxLength": 0}}}}
KANNEL_400 = err("`invalid_payload`: missing id, from or text; invalid %-escape; undecodable or empty text (8-bit data, coding=1, is refused); from not a phone number.")


def kfield(name, header, description, required=False):
    return {"name": name, "in": "query", "required": required,
            "description": f"{description} When absent from the query, the `{header}` header is used.",
            "schema": {"type": "string"}}


KANNEL_PARAMS_COMMON = [
    ref("parameters", "KannelSecret"),
    kfield("id", "X-Kannel-ID", "Kannel's message id (`%I`), the dedupe key; at most 128 bytes."),
    kfield("from", "X-Kannel-From", "The sender's number (`%p`); must normalise to E.164."),
    kfield("to", "X-Kannel-To", "Our number (`%P`)."),
    kfield("coding", "X-Kannel-Coding", "`%c`: 0 GSM/text, 1 8-bit data (refused), 2 UCS-2 (raw UTF-16BE unless a charset says otherwise)."),
    kfield("charset", "X-Kannel-Charset", "`%C`: the text's charset (UTF-8 by default; ISO-8859-1 and WINDOWS-1252 understood)."),
]

paths["/webhooks/sms/kannel"] = {
    "get": op(
        "receiveKannelMessage", "Inbound SMS from Kannel (get-url)", "webhooks",
        {"200": KANNEL_200, "400": KANNEL_400, "403": KANNEL_403, **webhook_common},
        description=("smsbox's get-url, e.g. `/webhooks/sms/kannel?secret=…&from=%p&to=%P&text=%a&id=%I&coding=%c&charset=%C`. "
                     "Authenticated by `secret` or a source address in kannel.allowed_sources. See channels/sms/README.md."),
        parameters_=KANNEL_PARAMS_COMMON + [
            {"name": "text", "in": "query", "required": True, "description": "The message text (`%a`), %-escaped raw bytes.",
             "schema": {"type": "string"}}],
        security=[]),
    "post": op(
        "receiveKannelMessagePost", "Inbound SMS from Kannel (post-url)", "webhooks",
        {"200": KANNEL_200, "400": KANNEL_400, "403": KANNEL_403,
         "413": err("`payload_too_large`: body over 65536 bytes."), **webhook_common},
        description=("smsbox's post-url: the text is the body; the fields come from the query or the X-Kannel-* headers "
                     "(`send-sender = true` for X-Kannel-From; put `id=%I` in the URL). The charset may also come from the Content-Type."),
        parameters_=KANNEL_PARAMS_COMMON,
        body={"required": True, "description": "The message text as raw bytes.",
              "content": {"*/*": {"schema": {"type": "string"}}}},
        security=[]),
}

paths["/webhooks/sms/kannel/dlr"] = {"get": op(
    "receiveKannelDeliveryReport", "Kannel delivery report", "webhooks",
    {"200": {"description": "Recorded (a report for an unknown message is accepted and ignored). Empty body.",
             "content": {"text/plain; charset=utf-8": {"schema": {"type": "string", "maxLength": 0}}}},
     "400": err("`invalid_payload`: missing message or status, unknown status, invalid %-escape."),
     "403": KANNEL_403, **webhook_common},
    description="The dlr-url Switchboard gives each message it sends through Kannel: `/webhooks/sms/kannel/dlr?secret=…&message=<message id>&status=%d`.",
    parameters_=[
        ref("parameters", "KannelSecret"),
        {"name": "message", "in": "query", "required": True, "description": "Switchboard's message id.", "schema": {"type": "string"}},
        {"name": "status", "in": "query", "required": True,
         "description": "Kannel DLR type: 1 delivered, 2 delivery failure (failed), 4 buffered and 8 SMSC submit (sent), 16 SMSC reject (failed).",
         "schema": {"type": "integer", "enum": [1, 2, 4, 8, 16]}},
    ],
    security=[])}

# ---------------------------------------------------------------- agent API: conversations

paths["/api/v1/conversations"] = {"get": op(
    "listConversations", "List the conversations the caller may see", "conversations",
    api({"200": ok_json("Newest activity first. No message text and no contact details.", s("ConversationList")),
         "400": resp("BadRequest")}),
    description="An `agent` sees the conversations assigned or offered to them and the unassigned ones of their teams (or of no team); a `supervisor` also sees their teams' assigned ones; an `admin` sees all.",
    parameters_=[
        {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": ["open", "pending", "snoozed", "resolved", "any"], "default": "open"}},
        {"name": "assignee", "in": "query", "required": False, "schema": {"type": "string", "enum": ["me", "unassigned", "any"], "default": "any"}},
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
        {"name": "contact_id", "in": "query", "required": False, "description": "Only this patient's conversations (their history across channels).",
         "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
    ])}

paths["/api/v1/conversations/{id}"] = {"get": op(
    "getConversation", "One conversation with its contact and messages", "conversations",
    api({"200": ok_json("The conversation. The read is audited (agent, conversation, time, source address).", s("ConversationDetail")),
         "404": resp("NotFound")}),
    parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/attachments/{attachment}"] = {"get": op(
    "getAttachment", "Download an attachment's bytes", "conversations",
    api({"200": {"description": "The bytes. Content-Type is the attachment's own only for images, PDF and plain text; otherwise application/octet-stream. Always `Content-Disposition: attachment`, `X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy. The read is audited.",
                 "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
         "404": resp("NotFound")}),
    description="Same visibility as the conversation.",
    parameters_=CONV_PARAM + [{"name": "attachment", "in": "path", "required": True, "schema": {"type": "integer", "format": "int64"}}])}

paths["/api/v1/conversations/{id}/claim"] = {"post": op(
    "claimConversation", "Assign the conversation to the caller", "conversations",
    api({"200": ok_json("Now (or already) assigned to the caller.", s("ConversationEnvelope")),
         "404": resp("NotFound"),
         "409": err("`conflict`: another agent holds it (handing over is a transfer).")}),
    description="No body.", parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/resolve"] = {"post": op(
    "resolveConversation", "Set status resolved", "conversations",
    api({"200": CONV_OK, "404": resp("NotFound")}),
    description="No body. Pending offers are withdrawn. Resolving a resolved conversation changes nothing.", parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/reopen"] = {"post": op(
    "reopenConversation", "Set status open", "conversations",
    api({"200": CONV_OK, "404": resp("NotFound")}),
    description="No body. Reopening a conversation that is not resolved changes nothing.", parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/messages"] = {"post": op(
    "replyToConversation", "Reply to the patient", "conversations",
    api({"202": ok_json("Committed to the outbox; delivery follows (watch delivery_status).", s("ReplyAccepted")),
         "400": resp("BadRequest"),
         "404": resp("NotFound"),
         "409": err("`conflict`: the conversation is assigned to another agent (role `agent`), or the patient opted out of SMS (STOP; the message says which keyword and when)."),
         "413": resp("PayloadTooLarge"),
         "415": resp("UnsupportedMediaType")}),
    description="Sends through the conversation's channel. An unassigned conversation becomes the replying agent's.",
    parameters_=CONV_PARAM,
    body=json_body(s("ReplyRequest"), example={"text": "Yes. Thursday at 14:30 is booked for you."}))}

# ---------------------------------------------------------------- agent API: routing

paths["/api/v1/conversations/{id}/accept"] = {"post": op(
    "acceptOffer", "Accept an offer", "routing",
    api({"200": ok_json("Assigned to the caller.", s("ConversationEnvelope")),
         "404": resp("NotFound"),
         "409": err("`conflict`: there is no pending offer of this conversation to the caller , or it was taken by another agent.")}),
    description="No body. Any role.", parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/decline"] = {"post": op(
    "declineOffer", "Decline an offer", "routing",
    api({"204": {"description": "Declined: the conversation is offered to someone else or queued; it is not offered to the caller again."},
         "404": resp("NotFound"),
         "409": err("`conflict`: there is no pending offer of this conversation to the caller.")}),
    description="No body. Any role.", parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/transfer"] = {"post": op(
    "transferConversation", "Transfer to an agent or a team", "routing",
    api({"200": ok_json("The conversation after the transfer.", s("ConversationEnvelope")),
         "400": err("`bad_request`: not exactly one of to_agent and to_team, a field is not a string, `to_agent: no such agent`, `to_team: no such team`."),
         "404": resp("NotFound"),
         "409": err("`conflict`: the conversation is resolved (reopen it first), or assigned to another agent (role `agent`), or not open for routing."),
         "413": resp("PayloadTooLarge"),
         "415": resp("UnsupportedMediaType")}),
    description="An `agent` may transfer unassigned conversations and their own; supervisors and admins any they can see. The optional note is stored as an internal note.",
    parameters_=CONV_PARAM, body=json_body(s("TransferRequest")))}

paths["/api/v1/conversations/{id}/notes"] = {"post": op(
    "addNote", "Add an internal note", "routing",
    api({"201": ok_json("Stored; visible to agents in the conversation's messages (direction `note`), never sent to the patient.", s("NoteCreated")),
         "400": resp("BadRequest"),
         "404": resp("NotFound"),
         "413": resp("PayloadTooLarge"),
         "415": resp("UnsupportedMediaType")}),
    parameters_=CONV_PARAM, body=json_body(s("NoteRequest"), example={"text": "Called back, left a voicemail."}))}

paths["/api/v1/conversations/{id}/routing"] = {"get": op(
    "getRoutingLog", "The conversation's routing decisions", "routing",
    api({"200": ok_json("Every recorded decision with its candidates and reasons. The read is audited.", s("RoutingLog")),
         "404": resp("NotFound")}),
    parameters_=CONV_PARAM)}

paths["/api/v1/conversations/{id}/queue"] = {"get": op(
    "getQueuePosition", "Queue position and estimated wait", "routing",
    api({"200": ok_json("Where the conversation stands in its queue.", s("QueuePosition")),
         "404": resp("NotFound")}),
    parameters_=CONV_PARAM)}

paths["/api/v1/me"] = {"get": op(
    "getMe", "The calling agent", "routing",
    api({"200": AGENT_OK, "404": resp("NotFound")}),
    description="Counts as activity (keeps the agent from being set away for idleness).")}

paths["/api/v1/me/presence"] = {"put": op(
    "setMyPresence", "Set the caller's presence", "routing",
    api({"200": AGENT_OK, "400": resp("BadRequest"), "404": resp("NotFound"),
         "413": err("`payload_too_large`: body over 1024 bytes."), "415": resp("UnsupportedMediaType")}),
    body=json_body(s("PresenceRequest"), example={"presence": "online"}))}

# ---------------------------------------------------------------- administration

paths["/api/v1/agents"] = {"get": op(
    "listAgents", "List active agents", "administration",
    api({"200": ok_json("Every active agent with routing state.", s("AgentList")), "403": resp("Forbidden")}),
    description="Role `supervisor` or `admin`."), "post": op(
    "createAgent", "Create an agent and its API token", "administration",
    api({"201": ok_json("The agent and its token (shown once).", s("AgentCreated")), "400": resp("BadRequest"),
         "403": resp("Forbidden"), "409": err("`conflict`: an agent with this email exists."),
         "413": err("`payload_too_large`: body over 16384 bytes."), "415": resp("UnsupportedMediaType")}),
    description="Role `admin`. The agent starts `offline`.", body=json_body(s("AgentCreate")))}

paths["/api/v1/agents/{agent}"] = {"patch": op(
    "updateAgent", "Change an agent's routing attributes", "administration",
    api({"200": AGENT_OK, "400": resp("BadRequest"), "403": resp("Forbidden"),
         "404": err("`not_found`: no such active agent."),
         "413": err("`payload_too_large`: body over 16384 bytes."), "415": resp("UnsupportedMediaType")}),
    description="Role `admin`; or `supervisor` for an agent of one of their teams, changing skills, languages and capacity only.",
    parameters_=[ref("parameters", "AgentId")], body=json_body(s("AgentUpdate"))), "delete": op(
    "deactivateAgent", "Deactivate an agent", "administration",
    api({"204": {"description": "Deactivated: tokens revoked, offers withdrawn, conversations back to the queue."},
         "403": resp("Forbidden"), "404": err("`not_found`: no such active agent."),
         "409": err("`conflict`: an admin cannot deactivate themselves.")}),
    description="Role `admin`. History (messages, audit) keeps the agent's id.",
    parameters_=[ref("parameters", "AgentId")])}

paths["/api/v1/agents/{agent}/presence"] = {"put": op(
    "setAgentPresence", "Set another agent's presence", "administration",
    api({"200": AGENT_OK, "400": resp("BadRequest"), "403": resp("Forbidden"),
         "404": err("`not_found`: no such agent."),
         "413": err("`payload_too_large`: body over 1024 bytes."), "415": resp("UnsupportedMediaType")}),
    description="Role `supervisor` or `admin`.",
    parameters_=[ref("parameters", "AgentId")], body=json_body(s("PresenceRequest"), example={"presence": "away"}))}

paths["/api/v1/teams"] = {"get": op(
    "listTeams", "List teams", "administration",
    api({"200": ok_json("Every team.", s("TeamList"))}),
    description="Any role.")}

paths["/api/v1/teams/{team}"] = {"put": op(
    "upsertTeam", "Create or update a team", "administration",
    api({"200": ok_json("The team as stored (created when no team had this name).", s("TeamEnvelope")),
         "400": resp("BadRequest"), "403": resp("Forbidden"), "404": resp("NotFound"),
         "413": err("`payload_too_large`: body over 4096 bytes."), "415": resp("UnsupportedMediaType")}),
    description="Role `admin`. The body may be `{}` (creates the team with defaults).",
    parameters_=[ref("parameters", "TeamName")], body=json_body(s("TeamUpdate")))}

# ---------------------------------------------------------------- events

EVENTS_DESCRIPTION = """The caller's live event stream over a WebSocket (connect with `Upgrade: websocket` and the bearer token in `Authorization`). Without an Upgrade header this path answers 426.

Frames (text, JSON):
- once, first: `{"type":"hello","seq":N,"agent_id":"…"}` — N is where the stream starts;
- then `{"type":"event","seq":N,"kind":"…","at":"<RFC 3339>","data":{…}}` for each event the caller may see, in `seq` order. `data` holds ids and states only (always `conversation_id` when the event is about one), never message text or contact details: fetch those through the audited API.

Kinds: `message.created`, `note.created`, `conversation.assigned`, `conversation.unassigned`, `conversation.queued`, `conversation.status`, `conversation.transferred`, `conversation.escalated`, `offer.created`, `offer.ended`, `agent.presence`, `sla.warning`, `sla.breached`, `message.status`, `message.read` (a chat patient saw a reply), `chat.typing` (`data.active`: the chat patient is typing), `conversation.channel` (a chat continued by SMS or email), `message.reparsed` (journal replay changed a message), and `resync`.

Reconnecting with `?after=SEQ` (the last `seq` received) first replays every event after SEQ, then continues live: nothing is lost across a reconnect. When events after SEQ have been deleted by retention, the first frame is an event of kind `resync` (`data.reason`); refetch state, then continue from its `seq`. Without `after`, the stream starts at the newest event.

The token is checked after the upgrade: close code 4401 for a missing or invalid token, 4400 for an `after` that is not a whole number; on shutdown the server closes the connection. Client frames are read (and count as activity) but not interpreted; the server pings."""

paths["/api/v1/events"] = {"get": op(
    "streamEvents", "Live event stream (WebSocket)", "events",
    {"101": {"description": "Switching protocols: the WebSocket is open (authentication and `after` are checked next; failures close it with 4401 or 4400)."},
     "426": err("`upgrade_required`: the request has no WebSocket upgrade.",
                {"Upgrade": {"description": "`websocket`", "schema": {"type": "string", "const": "websocket"}}})},
    description=EVENTS_DESCRIPTION,
    parameters_=[{"name": "after", "in": "query", "required": False,
                  "description": "Replay events after this seq (a whole number, 0 or more; anything else closes with 4400).",
                  "schema": {"type": "integer", "format": "int64", "minimum": 0}}])}

# ---------------------------------------------------------------- console sign-in

schemas["SessionRequest"] = {"oneOf": [
    {"type": "object", "required": ["email", "password"], "additionalProperties": False,
     "properties": {"email": {"type": "string", "maxLength": 254}, "password": {"type": "string", "maxLength": 1024}}},
    {"type": "object", "required": ["token"], "additionalProperties": False, "properties": {"token": {"type": "string"}}}]}
schemas["Session"] = {"type": "object", "required": ["agent"], "properties": {
    "agent": {"type": "object", "required": ["id", "name", "email", "role", "teams"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"},
        "role": {"type": "string", "enum": ["agent", "supervisor", "admin"]}, "teams": {"type": "array", "items": {"type": "string"}}}},
    "csrf_token": {"type": "string", "description": "Echo it in `X-CSRF-Token` on every POST, PUT, PATCH and DELETE made with the session cookie. Absent for a bearer token."}}}

paths["/api/v1/session"] = {
    "post": op(
        "signIn", "Sign in to the console", "console",
        {"201": {"description": "Signed in. `Set-Cookie: sb_session=…; Path=/; HttpOnly; SameSite=Strict` (and `Secure` behind a TLS proxy). The cookie authenticates later requests instead of a bearer token; unsafe methods must also send `X-CSRF-Token`.",
                 "content": {"application/json": {"schema": s("Session")}}},
         "400": resp("BadRequest"),
         "401": err("`sign_in_failed`: the email and password (or token) do not match an active agent. The same answer whichever was wrong."),
         "413": err("`payload_too_large`: body over 4096 bytes."),
         "415": resp("UnsupportedMediaType"),
         "429": err("`too_many_attempts`: 10 attempts without success from this address, or for this account, in 5 minutes.", RETRY_AFTER)},
        description="Email and password (set with `switchboard agent set-password`), or an API token. Sessions end after `chat.console_idle_timeout_seconds` without a request, on sign-out, on a password change and when the agent is deactivated.",
        body=json_body(s("SessionRequest"), example={"email": "ana@example.org", "password": "correct horse battery"}), security=[]),
    "get": op(
        "getSession", "Who is signed in", "console",
        api({"200": ok_json("The agent, and the CSRF token when the request came with the session cookie.", s("Session"))})),
    "delete": op(
        "signOut", "Sign out", "console",
        api({"204": {"description": "The session is deleted and the cookie cleared."}, "403": err("`csrf`: X-CSRF-Token is missing or wrong.")})),
}

paths["/api/v1/conversations/{id}/typing"] = {"post": op(
    "setTyping", "Tell a chat patient the agent is typing", "conversations",
    api({"204": {"description": "The patient's open chat widgets show (or stop showing) \"typing…\". Nothing is stored."},
         "400": resp("BadRequest"), "404": resp("NotFound"),
         "413": err("`payload_too_large`: body over 1024 bytes."), "415": resp("UnsupportedMediaType")}),
    parameters_=CONV_PARAM,
    body=json_body({"type": "object", "required": ["active"], "properties": {"active": {"type": "boolean"}}}, example={"active": True}))}

# ---------------------------------------------------------------- web chat and the console's files

paths["/chat"] = {"get": op(
    "chatSocket", "Web chat (WebSocket)", "webchat",
    {"101": {"description": "Switching protocols: the chat socket is open. The protocol (hello/welcome, message/ack, resume by sequence number, typing, read, queue, errors, close codes) is channels/webchat/PROTOCOL.md."},
     "426": err("`upgrade_required`: the request has no WebSocket upgrade.",
                {"Upgrade": {"description": "`websocket`", "schema": {"type": "string", "const": "websocket"}}})},
    description="No bearer token: visitors are anonymous (a signed visitor token) or identified by the embedding site's HMAC. The page's Origin must be allowed (`chat.allowed_origins`).",
    security=[])}

for path, op_id, summary, media in [
        ("/widget.js", "getWidgetScript", "The chat widget script", "text/javascript; charset=utf-8"),
        ("/widget/demo", "getWidgetDemo", "A page showing the chat widget", "text/html; charset=utf-8"),
        ("/console", "getConsole", "The agent console", "text/html; charset=utf-8"),
        ("/console/console.js", "getConsoleScript", "The agent console's script", "text/javascript; charset=utf-8"),
        ("/console/console.css", "getConsoleStyles", "The agent console's styles", "text/css; charset=utf-8")]:
    paths[path] = {"get": op(
        op_id, summary, "webchat",
        {"200": {"description": "The file, with a strong ETag, `X-Content-Type-Options: nosniff`; HTML pages also carry a Content-Security-Policy allowing only this server's scripts and styles, and `X-Frame-Options: DENY`.",
                 "content": {media: {"schema": {"type": "string"}}}},
         "304": {"description": "Not modified (If-None-Match matched the ETag)."}},
        security=[])}

# ---------------------------------------------------------------- document

document = {
    "openapi": "3.1.0",
    "info": {
        "title": "Switchboard",
        "version": "1",
        "description": ("switchboardd's HTTP API: the agent API under /api/v1 (bearer token), the channels' webhooks, "
                        "and the operational endpoints. JSON keys are snake_case; times are RFC 3339 in UTC; fields that "
                        "may be unset are present with null. Every error answer is `{\"error\":{\"code\":\"…\",\"message\":\"…\"}}`; "
                        "messages never contain patient data. See docs/API.md."),
    },
    "servers": [{"url": "/"}],
    "tags": [
        {"name": "operational", "description": "Health, readiness, metrics and this document; no bearer token."},
        {"name": "webhooks", "description": "Channels' inbound requests, authenticated by each channel's own scheme; no bearer token."},
        {"name": "conversations", "description": "Reading and answering conversations."},
        {"name": "routing", "description": "Presence, offers, transfers, notes, the routing log and queue position."},
        {"name": "administration", "description": "Agents and teams (supervisor and admin roles)."},
        {"name": "events", "description": "The live event stream."},
        {"name": "console", "description": "Signing in to the agent console (a session cookie instead of a bearer token)."},
        {"name": "webchat", "description": "The patients' chat socket and the files browsers load (widget, console); no bearer token."},
    ],
    "security": [{"bearerAuth": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "An agent's token, created with `switchboard agent add` (printed once; stored as a SHA-256 hash)."},
        },
        "schemas": schemas,
        "parameters": parameters,
        "headers": headers,
        "responses": responses,
    },
}

text = json.dumps(document, indent=2, ensure_ascii=False)
# A Swift raw string must not be ended early: keep the sequence quote-hash out of the text by
# writing the leading '#' of JSON pointers as its JSON escape.
text = text.replace('"#/', '"\\u0023/')
assert json.loads(text) == document
for bad in ('"#', '"""', '\\#'):
    assert bad not in text, bad

swift = f'''// The OpenAPI 3.1 description of every HTTP route switchboardd serves, served at
// /api/v1/openapi.json. A test checks that every registered route is documented here and
// every documented route is registered.
// GENERATED by tools/openapi.py — edit that script and run `python3 tools/openapi.py`.
enum OpenAPIDocument {{
    static let json = #"""
{text}
"""#
}}
'''
default_output = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "SwitchboardServer", "OpenAPIDocument.swift")
with open(sys.argv[1] if len(sys.argv) > 1 else default_output, "w") as f:
    f.write(swift)

for path, item in paths.items():
    for method in item:
        print(method.upper(), path)
