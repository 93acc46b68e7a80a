// The OpenAPI 3.1 description of every HTTP route switchboardd serves, served at
// /api/v1/openapi.json. A test checks that every registered route is documented here and
// every documented route is registered.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Switchboard",
    "version": "1",
    "description": "switchboardd's HTTP API: the agent API under /api/v1 (bearer token), the channels' webhooks, and the operational endpoints. JSON keys are snake_case; times are RFC 3339 in UTC; fields that may be unset are present with null. Every error answer is `{\"error\":{\"code\":\"…\",\"message\":\"…\"}}`; messages never contain patient data. See docs/API.md."
  },
  "servers": [
    {
      "url": "/"
    }
  ],
  "tags": [
    {
      "name": "operational",
      "description": "Health, readiness, metrics and this document; no bearer token."
    },
    {
      "name": "webhooks",
      "description": "Channels' inbound requests, authenticated by each channel's own scheme; no bearer token."
    },
    {
      "name": "conversations",
      "description": "Reading and answering conversations."
    },
    {
      "name": "routing",
      "description": "Presence, offers, transfers, notes, the routing log and queue position."
    },
    {
      "name": "administration",
      "description": "Agents and teams (supervisor and admin roles)."
    },
    {
      "name": "events",
      "description": "The live event stream."
    }
  ],
  "security": [
    {
      "bearerAuth": []
    }
  ],
  "paths": {
    "/healthz": {
      "get": {
        "operationId": "getHealth",
        "summary": "Liveness",
        "tags": [
          "operational"
        ],
        "description": "No bearer token. Keep off the public side of the reverse proxy.",
        "responses": {
          "200": {
            "description": "The process is running and serving HTTP.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Status"
                },
                "example": {
                  "status": "ok"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/readyz": {
      "get": {
        "operationId": "getReadiness",
        "summary": "Readiness",
        "tags": [
          "operational"
        ],
        "description": "No bearer token. On shutdown the listener closes first, so a load balancer sees connection refused.",
        "responses": {
          "200": {
            "description": "The listener is bound and the store answers.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Status"
                },
                "example": {
                  "status": "ready"
                }
              }
            }
          },
          "503": {
            "description": "Not ready: `{\"status\":\"not ready\"}` before the listener is bound, `{\"status\":\"store unavailable\"}` when the store does not answer. (A status object, not the error shape.)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Status"
                },
                "example": {
                  "status": "store unavailable"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/metrics": {
      "get": {
        "operationId": "getMetrics",
        "summary": "Prometheus metrics",
        "tags": [
          "operational"
        ],
        "description": "No bearer token. See docs/API.md, Metrics.",
        "responses": {
          "200": {
            "description": "Prometheus text exposition format (version 0.0.4). Labels have bounded values only: no ids, no patient data.",
            "content": {
              "text/plain; version=0.0.4; charset=utf-8": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/api/v1/openapi.json": {
      "get": {
        "operationId": "getOpenAPIDocument",
        "summary": "This OpenAPI document",
        "tags": [
          "operational"
        ],
        "description": "No bearer token.",
        "responses": {
          "200": {
            "description": "The OpenAPI 3.1 description of every HTTP route.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/webhooks/portal": {
      "post": {
        "operationId": "receivePortalWebhook",
        "summary": "Inbound patient message from the portal",
        "tags": [
          "webhooks"
        ],
        "description": "Standard Webhooks: `webhook-signature` is `v1,<base64 HMAC-SHA256(key, \"<webhook-id>.<webhook-timestamp>.<body>\")>` with the base64-decoded part of the `whsec_` secret as key; several space-separated signatures are accepted. Checks in order, each answering before anything is stored: channel configured (503), content type (415), size (413), signature and timestamp (401), payload (400). `202` is sent only after the commit; retry anything else with the same `webhook-id`. See channels/portal/README.md.",
        "parameters": [
          {
            "name": "webhook-id",
            "in": "header",
            "required": true,
            "description": "The delivery's id; the idempotency key (reuse it on every retry). At most 256 bytes.",
            "schema": {
              "type": "string",
              "maxLength": 256
            }
          },
          {
            "name": "webhook-timestamp",
            "in": "header",
            "required": true,
            "description": "Unix seconds when this attempt was signed.",
            "schema": {
              "type": "string",
              "pattern": "^[0-9]+$"
            }
          },
          {
            "name": "webhook-signature",
            "in": "header",
            "required": true,
            "description": "`v1,<base64 signature>`, one or more separated by single spaces.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/PortalInboundEvent"
              }
            }
          }
        },
        "responses": {
          "202": {
            "description": "Stored (committed) — or the same `webhook-id` was seen before and this is the first answer again.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/PortalAccepted"
                },
                "example": {
                  "conversation_id": "cnv_…",
                  "message_id": "msg_…"
                }
              }
            }
          },
          "400": {
            "description": "`invalid_payload`: invalid JSON, missing or malformed field, unsupported `type`, invalid `patient.phone` (the message names the field); `bad_request`: `webhook-id` longer than 256 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "`invalid_signature`: missing `webhook-id`/`webhook-timestamp`/`webhook-signature`, no matching `v1` signature, or timestamp outside `portal.timestamp_tolerance_seconds`.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "`conflict`: `thread_id` already belongs to another patient's conversation.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "`payload_too_large`: body over `portal.max_body_bytes` (default 262144).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "description": "`unsupported_media_type`: Content-Type is not application/json.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Retry-After": {
                "$ref": "\u0023/components/headers/RetryAfter"
              }
            }
          }
        },
        "security": []
      }
    },
    "/webhooks/sms/twilio": {
      "post": {
        "operationId": "receiveTwilioMessage",
        "summary": "Inbound SMS/MMS from Twilio",
        "tags": [
          "webhooks"
        ],
        "description": "Twilio's *A message comes in* webhook. STOP/START/HELP keywords update the number's SMS consent. See channels/sms/README.md.",
        "parameters": [
          {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": true,
            "description": "base64 HMAC-SHA1 with twilio.auth_token over the URL Twilio called (twilio.public_url + path and query) followed by each POST parameter name and value in name order.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/x-www-form-urlencoded": {
              "schema": {
                "$ref": "\u0023/components/schemas/TwilioMessageForm"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Stored (committed), or the same MessageSid was seen before. An empty TwiML answer.",
            "content": {
              "text/xml; charset=utf-8": {
                "schema": {
                  "type": "string"
                },
                "example": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
              }
            }
          },
          "400": {
            "description": "`invalid_payload`: unparseable form; MessageSid, From or To missing; From not a phone number; no Body and no media.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "`invalid_signature`: X-Twilio-Signature missing or wrong. Nothing is stored.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "`payload_too_large`: body over 65536 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "description": "`unsupported_media_type`: Content-Type is not application/x-www-form-urlencoded.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Retry-After": {
                "$ref": "\u0023/components/headers/RetryAfter"
              }
            }
          }
        },
        "security": []
      }
    },
    "/webhooks/sms/twilio/status": {
      "post": {
        "operationId": "receiveTwilioStatus",
        "summary": "Twilio delivery status callback",
        "tags": [
          "webhooks"
        ],
        "description": "The StatusCallback Switchboard sets on each message it sends through Twilio; signed like the message webhook.",
        "parameters": [
          {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": true,
            "description": "base64 HMAC-SHA1 with twilio.auth_token over the URL Twilio called (twilio.public_url + path and query) followed by each POST parameter name and value in name order.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/x-www-form-urlencoded": {
              "schema": {
                "$ref": "\u0023/components/schemas/TwilioStatusForm"
              }
            }
          }
        },
        "responses": {
          "204": {
            "description": "Recorded (a report for an unknown message is accepted and ignored; a report never moves a status back)."
          },
          "400": {
            "description": "`invalid_payload`: unparseable form; MessageSid or MessageStatus missing; unknown MessageStatus.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "`invalid_signature`: X-Twilio-Signature missing or wrong. Nothing is stored.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "`payload_too_large`: body over 65536 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "description": "`unsupported_media_type`: Content-Type is not application/x-www-form-urlencoded.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Retry-After": {
                "$ref": "\u0023/components/headers/RetryAfter"
              }
            }
          }
        },
        "security": []
      }
    },
    "/webhooks/sms/kannel": {
      "get": {
        "operationId": "receiveKannelMessage",
        "summary": "Inbound SMS from Kannel (get-url)",
        "tags": [
          "webhooks"
        ],
        "description": "smsbox's get-url, e.g. `/webhooks/sms/kannel?secret=…&from=%p&to=%P&text=%a&id=%I&coding=%c&charset=%C`. Authenticated by `secret` or a source address in kannel.allowed_sources. See channels/sms/README.md.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/KannelSecret"
          },
          {
            "name": "id",
            "in": "query",
            "required": false,
            "description": "Kannel's message id (`%I`), the dedupe key; at most 128 bytes. When absent from the query, the `X-Kannel-ID` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "from",
            "in": "query",
            "required": false,
            "description": "The sender's number (`%p`); must normalise to E.164. When absent from the query, the `X-Kannel-From` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "to",
            "in": "query",
            "required": false,
            "description": "Our number (`%P`). When absent from the query, the `X-Kannel-To` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "coding",
            "in": "query",
            "required": false,
            "description": "`%c`: 0 GSM/text, 1 8-bit data (refused), 2 UCS-2 (raw UTF-16BE unless a charset says otherwise). When absent from the query, the `X-Kannel-Coding` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "charset",
            "in": "query",
            "required": false,
            "description": "`%C`: the text's charset (UTF-8 by default; ISO-8859-1 and WINDOWS-1252 understood). When absent from the query, the `X-Kannel-Charset` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "text",
            "in": "query",
            "required": true,
            "description": "The message text (`%a`), %-escaped raw bytes.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Stored (committed), or Kannel's message id was seen before. An empty body, so that Kannel sends no SMS back.",
            "content": {
              "text/plain; charset=utf-8": {
                "schema": {
                  "type": "string",
                  "maxLength": 0
                }
              }
            }
          },
          "400": {
            "description": "`invalid_payload`: missing id, from or text; invalid %-escape; undecodable or empty text (8-bit data, coding=1, is refused); from not a phone number.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "`forbidden`: the secret is missing or wrong and the source address is not in kannel.allowed_sources.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Retry-After": {
                "$ref": "\u0023/components/headers/RetryAfter"
              }
            }
          }
        },
        "security": []
      },
      "post": {
        "operationId": "receiveKannelMessagePost",
        "summary": "Inbound SMS from Kannel (post-url)",
        "tags": [
          "webhooks"
        ],
        "description": "smsbox's post-url: the text is the body; the fields come from the query or the X-Kannel-* headers (`send-sender = true` for X-Kannel-From; put `id=%I` in the URL). The charset may also come from the Content-Type.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/KannelSecret"
          },
          {
            "name": "id",
            "in": "query",
            "required": false,
            "description": "Kannel's message id (`%I`), the dedupe key; at most 128 bytes. When absent from the query, the `X-Kannel-ID` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "from",
            "in": "query",
            "required": false,
            "description": "The sender's number (`%p`); must normalise to E.164. When absent from the query, the `X-Kannel-From` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "to",
            "in": "query",
            "required": false,
            "description": "Our number (`%P`). When absent from the query, the `X-Kannel-To` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "coding",
            "in": "query",
            "required": false,
            "description": "`%c`: 0 GSM/text, 1 8-bit data (refused), 2 UCS-2 (raw UTF-16BE unless a charset says otherwise). When absent from the query, the `X-Kannel-Coding` header is used.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "charset",
            "in": "query",
            "required": false,
            "description": "`%C`: the text's charset (UTF-8 by default; ISO-8859-1 and WINDOWS-1252 understood). When absent from the query, the `X-Kannel-Charset` header is used.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "description": "The message text as raw bytes.",
          "content": {
            "*/*": {
              "schema": {
                "type": "string"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Stored (committed), or Kannel's message id was seen before. An empty body, so that Kannel sends no SMS back.",
            "content": {
              "text/plain; charset=utf-8": {
                "schema": {
                  "type": "string",
                  "maxLength": 0
                }
              }
            }
          },
          "400": {
            "description": "`invalid_payload`: missing id, from or text; invalid %-escape; undecodable or empty text (8-bit data, coding=1, is refused); from not a phone number.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "`forbidden`: the secret is missing or wrong and the source address is not in kannel.allowed_sources.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "`payload_too_large`: body over 65536 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Retry-After": {
                "$ref": "\u0023/components/headers/RetryAfter"
              }
            }
          }
        },
        "security": []
      }
    },
    "/webhooks/sms/kannel/dlr": {
      "get": {
        "operationId": "receiveKannelDeliveryReport",
        "summary": "Kannel delivery report",
        "tags": [
          "webhooks"
        ],
        "description": "The dlr-url Switchboard gives each message it sends through Kannel: `/webhooks/sms/kannel/dlr?secret=…&message=<message id>&status=%d`.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/KannelSecret"
          },
          {
            "name": "message",
            "in": "query",
            "required": true,
            "description": "Switchboard's message id.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "status",
            "in": "query",
            "required": true,
            "description": "Kannel DLR type: 1 delivered, 2 delivery failure (failed), 4 buffered and 8 SMSC submit (sent), 16 SMSC reject (failed).",
            "schema": {
              "type": "integer",
              "enum": [
                1,
                2,
                4,
                8,
                16
              ]
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Recorded (a report for an unknown message is accepted and ignored). Empty body.",
            "content": {
              "text/plain; charset=utf-8": {
                "schema": {
                  "type": "string",
                  "maxLength": 0
                }
              }
            }
          },
          "400": {
            "description": "`invalid_payload`: missing message or status, unknown status, invalid %-escape.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "`forbidden`: the secret is missing or wrong and the source address is not in kannel.allowed_sources.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "`channel_disabled`: the channel is not configured on this server; or `store_unavailable`: the store could not commit (nothing was stored; retry).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Retry-After": {
                "$ref": "\u0023/components/headers/RetryAfter"
              }
            }
          }
        },
        "security": []
      }
    },
    "/api/v1/conversations": {
      "get": {
        "operationId": "listConversations",
        "summary": "List the conversations the caller may see",
        "tags": [
          "conversations"
        ],
        "description": "An `agent` sees the conversations assigned or offered to them and the unassigned ones of their teams (or of no team); a `supervisor` also sees their teams' assigned ones; an `admin` sees all.",
        "parameters": [
          {
            "name": "status",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "enum": [
                "open",
                "pending",
                "snoozed",
                "resolved",
                "any"
              ],
              "default": "open"
            }
          },
          {
            "name": "assignee",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "enum": [
                "me",
                "unassigned",
                "any"
              ],
              "default": "any"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 500,
              "default": 100
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Newest activity first. No message text and no contact details.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationList"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}": {
      "get": {
        "operationId": "getConversation",
        "summary": "One conversation with its contact and messages",
        "tags": [
          "conversations"
        ],
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "The conversation. The read is audited (agent, conversation, time, source address).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationDetail"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/claim": {
      "post": {
        "operationId": "claimConversation",
        "summary": "Assign the conversation to the caller",
        "tags": [
          "conversations"
        ],
        "description": "No body.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "Now (or already) assigned to the caller.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationEnvelope"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "409": {
            "description": "`conflict`: another agent holds it (handing over is a transfer).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/resolve": {
      "post": {
        "operationId": "resolveConversation",
        "summary": "Set status resolved",
        "tags": [
          "conversations"
        ],
        "description": "No body. Pending offers are withdrawn. Resolving a resolved conversation changes nothing.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "The conversation.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationEnvelope"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/reopen": {
      "post": {
        "operationId": "reopenConversation",
        "summary": "Set status open",
        "tags": [
          "conversations"
        ],
        "description": "No body. Reopening a conversation that is not resolved changes nothing.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "The conversation.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationEnvelope"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/messages": {
      "post": {
        "operationId": "replyToConversation",
        "summary": "Reply to the patient",
        "tags": [
          "conversations"
        ],
        "description": "Sends through the conversation's channel. An unassigned conversation becomes the replying agent's.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/ReplyRequest"
              },
              "example": {
                "text": "Yes. Thursday at 14:30 is booked for you."
              }
            }
          }
        },
        "responses": {
          "202": {
            "description": "Committed to the outbox; delivery follows (watch delivery_status).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ReplyAccepted"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "409": {
            "description": "`conflict`: the conversation is assigned to another agent (role `agent`), or the patient opted out of SMS (STOP; the message says which keyword and when).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "\u0023/components/responses/PayloadTooLarge"
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/accept": {
      "post": {
        "operationId": "acceptOffer",
        "summary": "Accept an offer",
        "tags": [
          "routing"
        ],
        "description": "No body. Any role.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "Assigned to the caller.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationEnvelope"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "409": {
            "description": "`conflict`: there is no pending offer of this conversation to the caller (also for an unknown id), or it was taken by another agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/decline": {
      "post": {
        "operationId": "declineOffer",
        "summary": "Decline an offer",
        "tags": [
          "routing"
        ],
        "description": "No body. Any role.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "204": {
            "description": "Declined: the conversation is offered to someone else or queued; it is not offered to the caller again."
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "409": {
            "description": "`conflict`: there is no pending offer of this conversation to the caller (also for an unknown id).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/transfer": {
      "post": {
        "operationId": "transferConversation",
        "summary": "Transfer to an agent or a team",
        "tags": [
          "routing"
        ],
        "description": "An `agent` may transfer unassigned conversations and their own; supervisors and admins any they can see. The optional note is stored as an internal note.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/TransferRequest"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The conversation after the transfer.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/ConversationEnvelope"
                }
              }
            }
          },
          "400": {
            "description": "`bad_request`: not exactly one of to_agent and to_team, a field is not a string, `to_agent: no such agent`, `to_team: no such team`.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "409": {
            "description": "`conflict`: the conversation is resolved (reopen it first), or assigned to another agent (role `agent`), or not open for routing.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "\u0023/components/responses/PayloadTooLarge"
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/notes": {
      "post": {
        "operationId": "addNote",
        "summary": "Add an internal note",
        "tags": [
          "routing"
        ],
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/NoteRequest"
              },
              "example": {
                "text": "Called back, left a voicemail."
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Stored; visible to agents in the conversation's messages (direction `note`), never sent to the patient.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/NoteCreated"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "413": {
            "$ref": "\u0023/components/responses/PayloadTooLarge"
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/routing": {
      "get": {
        "operationId": "getRoutingLog",
        "summary": "The conversation's routing decisions",
        "tags": [
          "routing"
        ],
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "Every recorded decision with its candidates and reasons. The read is audited.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/RoutingLog"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/conversations/{id}/queue": {
      "get": {
        "operationId": "getQueuePosition",
        "summary": "Queue position and estimated wait",
        "tags": [
          "routing"
        ],
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/ConversationId"
          }
        ],
        "responses": {
          "200": {
            "description": "Where the conversation stands in its queue.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/QueuePosition"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/me": {
      "get": {
        "operationId": "getMe",
        "summary": "The calling agent",
        "tags": [
          "routing"
        ],
        "description": "Counts as activity (keeps the agent from being set away for idleness).",
        "responses": {
          "200": {
            "description": "The agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/AgentEnvelope"
                }
              }
            }
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/me/presence": {
      "put": {
        "operationId": "setMyPresence",
        "summary": "Set the caller's presence",
        "tags": [
          "routing"
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/PresenceRequest"
              },
              "example": {
                "presence": "online"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/AgentEnvelope"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "413": {
            "description": "`payload_too_large`: body over 1024 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/agents": {
      "get": {
        "operationId": "listAgents",
        "summary": "List active agents",
        "tags": [
          "administration"
        ],
        "description": "Role `supervisor` or `admin`.",
        "responses": {
          "200": {
            "description": "Every active agent with routing state.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/AgentList"
                }
              }
            }
          },
          "403": {
            "$ref": "\u0023/components/responses/Forbidden"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/agents/{agent}": {
      "patch": {
        "operationId": "updateAgent",
        "summary": "Change an agent's routing attributes",
        "tags": [
          "administration"
        ],
        "description": "Role `admin`.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/AgentId"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/AgentUpdate"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/AgentEnvelope"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "403": {
            "$ref": "\u0023/components/responses/Forbidden"
          },
          "404": {
            "description": "`not_found`: no such active agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "`payload_too_large`: body over 16384 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/agents/{agent}/presence": {
      "put": {
        "operationId": "setAgentPresence",
        "summary": "Set another agent's presence",
        "tags": [
          "administration"
        ],
        "description": "Role `supervisor` or `admin`.",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/AgentId"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/PresenceRequest"
              },
              "example": {
                "presence": "away"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/AgentEnvelope"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "403": {
            "$ref": "\u0023/components/responses/Forbidden"
          },
          "404": {
            "description": "`not_found`: no such agent.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "`payload_too_large`: body over 1024 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/teams": {
      "get": {
        "operationId": "listTeams",
        "summary": "List teams",
        "tags": [
          "administration"
        ],
        "description": "Any role.",
        "responses": {
          "200": {
            "description": "Every team.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/TeamList"
                }
              }
            }
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/teams/{team}": {
      "put": {
        "operationId": "upsertTeam",
        "summary": "Create or update a team",
        "tags": [
          "administration"
        ],
        "description": "Role `admin`. The body may be `{}` (creates the team with defaults).",
        "parameters": [
          {
            "$ref": "\u0023/components/parameters/TeamName"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "\u0023/components/schemas/TeamUpdate"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The team as stored (created when no team had this name).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/TeamEnvelope"
                }
              }
            }
          },
          "400": {
            "$ref": "\u0023/components/responses/BadRequest"
          },
          "403": {
            "$ref": "\u0023/components/responses/Forbidden"
          },
          "404": {
            "$ref": "\u0023/components/responses/NotFound"
          },
          "413": {
            "description": "`payload_too_large`: body over 4096 bytes.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            }
          },
          "415": {
            "$ref": "\u0023/components/responses/UnsupportedMediaType"
          },
          "401": {
            "$ref": "\u0023/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "\u0023/components/responses/InternalError"
          }
        }
      }
    },
    "/api/v1/events": {
      "get": {
        "operationId": "streamEvents",
        "summary": "Live event stream (WebSocket)",
        "tags": [
          "events"
        ],
        "description": "The caller's live event stream over a WebSocket (connect with `Upgrade: websocket` and the bearer token in `Authorization`). Without an Upgrade header this path answers 426.\n\nFrames (text, JSON):\n- once, first: `{\"type\":\"hello\",\"seq\":N,\"agent_id\":\"…\"}` — N is where the stream starts;\n- then `{\"type\":\"event\",\"seq\":N,\"kind\":\"…\",\"at\":\"<RFC 3339>\",\"data\":{…}}` for each event the caller may see, in `seq` order. `data` holds ids and states only (always `conversation_id` when the event is about one), never message text or contact details: fetch those through the audited API.\n\nKinds: `message.created`, `note.created`, `conversation.assigned`, `conversation.unassigned`, `conversation.queued`, `conversation.status`, `conversation.transferred`, `conversation.escalated`, `offer.created`, `offer.ended`, `agent.presence`, `sla.warning`, `sla.breached`, and `resync`.\n\nReconnecting with `?after=SEQ` (the last `seq` received) first replays every event after SEQ, then continues live: nothing is lost across a reconnect. When events after SEQ have been deleted by retention, the first frame is an event of kind `resync` (`data.reason`); refetch state, then continue from its `seq`. Without `after`, the stream starts at the newest event.\n\nThe token is checked after the upgrade: close code 4401 for a missing or invalid token, 4400 for an `after` that is not a whole number; on shutdown the server closes the connection. Client frames are read (and count as activity) but not interpreted; the server pings.",
        "parameters": [
          {
            "name": "after",
            "in": "query",
            "required": false,
            "description": "Replay events after this seq (a whole number, 0 or more; anything else closes with 4400).",
            "schema": {
              "type": "integer",
              "format": "int64",
              "minimum": 0
            }
          }
        ],
        "responses": {
          "101": {
            "description": "Switching protocols: the WebSocket is open (authentication and `after` are checked next; failures close it with 4401 or 4400)."
          },
          "426": {
            "description": "`upgrade_required`: the request has no WebSocket upgrade.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "\u0023/components/schemas/Error"
                }
              }
            },
            "headers": {
              "Upgrade": {
                "description": "`websocket`",
                "schema": {
                  "type": "string",
                  "const": "websocket"
                }
              }
            }
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An agent's token, created with `switchboard agent add` (printed once; stored as a SHA-256 hash)."
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "description": "Every error answer (except /readyz, which answers a status object). `message` is for humans: it names fields and reasons, never values (they may be PHI).",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "code",
              "message"
            ],
            "properties": {
              "code": {
                "type": "string",
                "description": "Machine-readable reason: bad_request, invalid_payload, unauthorized, invalid_signature, forbidden, not_found, conflict, payload_too_large, unsupported_media_type, upgrade_required, channel_disabled, store_unavailable, internal_error (also method_not_allowed, too_many_requests, unavailable or error for other statuses).",
                "examples": [
                  "not_found"
                ]
              },
              "message": {
                "type": "string",
                "examples": [
                  "no such conversation"
                ]
              }
            }
          }
        },
        "example": {
          "error": {
            "code": "not_found",
            "message": "no such conversation"
          }
        }
      },
      "Status": {
        "type": "object",
        "required": [
          "status"
        ],
        "properties": {
          "status": {
            "type": "string"
          }
        }
      },
      "Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 in UTC; `.sss` only when the milliseconds are not zero.",
        "examples": [
          "2026-11-29T10:00:00Z",
          "2026-11-29T10:07:12.250Z"
        ]
      },
      "Channel": {
        "type": "string",
        "enum": [
          "email",
          "sms",
          "chat",
          "portal"
        ]
      },
      "ConversationStatus": {
        "type": "string",
        "enum": [
          "open",
          "pending",
          "snoozed",
          "resolved"
        ],
        "description": "`pending` means waiting on the patient."
      },
      "Priority": {
        "type": "string",
        "enum": [
          "emergency",
          "urgent",
          "normal",
          "low"
        ]
      },
      "MessageDirection": {
        "type": "string",
        "enum": [
          "inbound",
          "outbound",
          "note"
        ],
        "description": "`inbound` from the patient, `outbound` an agent's (or Switchboard's) message to the patient, `note` an internal note never sent to the patient."
      },
      "DeliveryStatus": {
        "type": "string",
        "enum": [
          "queued",
          "sent",
          "delivered",
          "failed"
        ]
      },
      "IdentityKind": {
        "type": "string",
        "enum": [
          "email",
          "phone",
          "portal",
          "chat"
        ]
      },
      "AgentRole": {
        "type": "string",
        "enum": [
          "agent",
          "supervisor",
          "admin"
        ]
      },
      "Presence": {
        "type": "string",
        "enum": [
          "online",
          "away",
          "offline"
        ],
        "description": "Only `online` agents receive offers; `away` agents keep their conversations; `offline` agents may hand back the ones still waiting for a first reply."
      },
      "RoutingPolicy": {
        "type": "string",
        "enum": [
          "least-loaded",
          "round-robin",
          "manual"
        ],
        "description": "`least-loaded`: lowest load relative to capacity on the conversation's channel; `round-robin`: the next eligible agent after the last one chosen; `manual`: nobody is offered anything, agents claim from the queue."
      },
      "Conversation": {
        "type": "object",
        "required": [
          "id",
          "status",
          "priority",
          "intent",
          "language",
          "channel",
          "assignee_id",
          "team_id",
          "contact_id",
          "created_at",
          "updated_at",
          "last_message_at"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "status": {
            "$ref": "\u0023/components/schemas/ConversationStatus"
          },
          "priority": {
            "$ref": "\u0023/components/schemas/Priority"
          },
          "intent": {
            "type": [
              "string",
              "null"
            ],
            "description": "Triage's intent label, or null before triage."
          },
          "language": {
            "type": [
              "string",
              "null"
            ],
            "description": "Triage's language, or null before triage."
          },
          "channel": {
            "$ref": "\u0023/components/schemas/Channel"
          },
          "assignee_id": {
            "type": [
              "string",
              "null"
            ],
            "description": "The agent holding it, or null."
          },
          "team_id": {
            "type": [
              "string",
              "null"
            ],
            "description": "The team queue, or null."
          },
          "contact_id": {
            "type": "string"
          },
          "created_at": {
            "$ref": "\u0023/components/schemas/Timestamp"
          },
          "updated_at": {
            "$ref": "\u0023/components/schemas/Timestamp"
          },
          "last_message_at": {
            "$ref": "\u0023/components/schemas/Timestamp"
          }
        }
      },
      "ConversationEnvelope": {
        "type": "object",
        "required": [
          "conversation"
        ],
        "properties": {
          "conversation": {
            "$ref": "\u0023/components/schemas/Conversation"
          }
        }
      },
      "ConversationList": {
        "type": "object",
        "required": [
          "conversations"
        ],
        "properties": {
          "conversations": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/Conversation"
            }
          }
        }
      },
      "Identity": {
        "type": "object",
        "required": [
          "kind",
          "value"
        ],
        "properties": {
          "kind": {
            "$ref": "\u0023/components/schemas/IdentityKind"
          },
          "value": {
            "type": "string",
            "description": "portal patient id, E.164 phone number, lower-cased email, or chat id"
          }
        }
      },
      "Contact": {
        "type": "object",
        "required": [
          "id",
          "name",
          "identities"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "name": {
            "type": [
              "string",
              "null"
            ]
          },
          "identities": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/Identity"
            }
          }
        }
      },
      "Attachment": {
        "type": "object",
        "description": "A reference to media (e.g. MMS). Fields that are unknown are left out.",
        "properties": {
          "url": {
            "type": "string"
          },
          "content_type": {
            "type": "string"
          },
          "filename": {
            "type": "string"
          },
          "size_bytes": {
            "type": "integer",
            "format": "int64"
          }
        }
      },
      "Triage": {
        "type": "object",
        "description": "An inbound message's triage labels and the evidence behind them.",
        "required": [
          "intent",
          "urgency",
          "language",
          "evidence"
        ],
        "properties": {
          "intent": {
            "type": "string",
            "examples": [
              "appointment_new"
            ]
          },
          "urgency": {
            "type": "string",
            "examples": [
              "routine"
            ]
          },
          "language": {
            "type": "string",
            "examples": [
              "en"
            ]
          },
          "evidence": {
            "description": "The stored evidence, passed through as JSON (usually an object)."
          }
        }
      },
      "Message": {
        "type": "object",
        "required": [
          "id",
          "direction",
          "channel",
          "sender_agent_id",
          "text",
          "sent_at",
          "created_at",
          "delivery_status",
          "failure_reason",
          "attachments",
          "triage"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "direction": {
            "$ref": "\u0023/components/schemas/MessageDirection"
          },
          "channel": {
            "$ref": "\u0023/components/schemas/Channel"
          },
          "sender_agent_id": {
            "type": [
              "string",
              "null"
            ],
            "description": "The agent who wrote an outbound message or note; null otherwise."
          },
          "text": {
            "type": "string"
          },
          "sent_at": {
            "allOf": [
              {
                "$ref": "\u0023/components/schemas/Timestamp"
              }
            ],
            "description": "When the patient (inbound) or the agent (outbound, note) sent it."
          },
          "created_at": {
            "allOf": [
              {
                "$ref": "\u0023/components/schemas/Timestamp"
              }
            ],
            "description": "When Switchboard stored it."
          },
          "delivery_status": {
            "anyOf": [
              {
                "$ref": "\u0023/components/schemas/DeliveryStatus"
              },
              {
                "type": "null"
              }
            ],
            "description": "Outbound only; null for inbound messages and notes."
          },
          "failure_reason": {
            "type": [
              "string",
              "null"
            ],
            "description": "Why an outbound message `failed`; otherwise null."
          },
          "attachments": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/Attachment"
            }
          },
          "triage": {
            "anyOf": [
              {
                "$ref": "\u0023/components/schemas/Triage"
              },
              {
                "type": "null"
              }
            ]
          }
        }
      },
      "ConversationSMS": {
        "type": "object",
        "description": "The SMS side of a conversation: the patient's number and whether it may be texted.",
        "required": [
          "number",
          "opted_out",
          "consent_keyword",
          "consent_changed_at"
        ],
        "properties": {
          "number": {
            "type": "string",
            "description": "E.164"
          },
          "opted_out": {
            "type": "boolean",
            "description": "True after STOP (and until START): replies are refused with 409."
          },
          "consent_keyword": {
            "type": [
              "string",
              "null"
            ],
            "description": "The keyword of the last consent change (e.g. STOP, START)."
          },
          "consent_changed_at": {
            "anyOf": [
              {
                "$ref": "\u0023/components/schemas/Timestamp"
              },
              {
                "type": "null"
              }
            ]
          }
        }
      },
      "ConversationDetail": {
        "type": "object",
        "required": [
          "conversation",
          "contact",
          "messages",
          "tags",
          "required_skills"
        ],
        "properties": {
          "conversation": {
            "$ref": "\u0023/components/schemas/Conversation"
          },
          "contact": {
            "$ref": "\u0023/components/schemas/Contact"
          },
          "messages": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/Message"
            },
            "description": "Oldest first."
          },
          "sms": {
            "allOf": [
              {
                "$ref": "\u0023/components/schemas/ConversationSMS"
              }
            ],
            "description": "Present only for SMS conversations (left out otherwise)."
          },
          "tags": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "required_skills": {
            "type": "array",
            "items": {
              "type": "string"
            }
          }
        }
      },
      "SMSInfo": {
        "type": "object",
        "description": "What the patient's phone will receive (the notice text in notify-only mode).",
        "required": [
          "encoding",
          "segments",
          "units"
        ],
        "properties": {
          "encoding": {
            "type": "string",
            "enum": [
              "GSM-7",
              "UCS-2"
            ]
          },
          "segments": {
            "type": "integer"
          },
          "units": {
            "type": "integer",
            "description": "Septets for GSM-7, UTF-16 code units for UCS-2."
          }
        }
      },
      "ReplyAccepted": {
        "type": "object",
        "required": [
          "message_id",
          "delivery_status",
          "warnings"
        ],
        "properties": {
          "message_id": {
            "type": "string"
          },
          "delivery_status": {
            "$ref": "\u0023/components/schemas/DeliveryStatus"
          },
          "sms": {
            "allOf": [
              {
                "$ref": "\u0023/components/schemas/SMSInfo"
              }
            ],
            "description": "Present only for SMS conversations."
          },
          "warnings": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "E.g. the reply takes more than `sms.segment_warning` SMS segments; empty otherwise."
          }
        },
        "example": {
          "delivery_status": "queued",
          "message_id": "msg_0b8f",
          "warnings": []
        }
      },
      "NoteCreated": {
        "type": "object",
        "required": [
          "message_id"
        ],
        "properties": {
          "message_id": {
            "type": "string",
            "description": "The note's id (a message with direction `note`)."
          }
        }
      },
      "ChannelCounts": {
        "type": "object",
        "description": "Per channel (email, sms, chat, portal): a whole number.",
        "propertyNames": {
          "$ref": "\u0023/components/schemas/Channel"
        },
        "additionalProperties": {
          "type": "integer"
        }
      },
      "Agent": {
        "type": "object",
        "required": [
          "id",
          "name",
          "email",
          "role",
          "teams",
          "skills",
          "languages",
          "capacity",
          "load",
          "presence",
          "presence_changed_at"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "email": {
            "type": "string"
          },
          "role": {
            "$ref": "\u0023/components/schemas/AgentRole"
          },
          "teams": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "Team names, sorted."
          },
          "skills": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "languages": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "capacity": {
            "allOf": [
              {
                "$ref": "\u0023/components/schemas/ChannelCounts"
              }
            ],
            "description": "Conversations the agent may hold at once, per channel."
          },
          "load": {
            "allOf": [
              {
                "$ref": "\u0023/components/schemas/ChannelCounts"
              }
            ],
            "description": "Conversations the agent holds now, per channel (channels with none are left out)."
          },
          "presence": {
            "$ref": "\u0023/components/schemas/Presence"
          },
          "presence_changed_at": {
            "anyOf": [
              {
                "$ref": "\u0023/components/schemas/Timestamp"
              },
              {
                "type": "null"
              }
            ]
          }
        }
      },
      "AgentEnvelope": {
        "type": "object",
        "required": [
          "agent"
        ],
        "properties": {
          "agent": {
            "$ref": "\u0023/components/schemas/Agent"
          }
        }
      },
      "AgentList": {
        "type": "object",
        "required": [
          "agents"
        ],
        "properties": {
          "agents": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/Agent"
            }
          }
        }
      },
      "Team": {
        "type": "object",
        "required": [
          "id",
          "name",
          "policy",
          "auto_accept",
          "overflow"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "policy": {
            "$ref": "\u0023/components/schemas/RoutingPolicy"
          },
          "auto_accept": {
            "type": "boolean",
            "description": "Offers to this team's agents become assignments at once."
          },
          "overflow": {
            "type": [
              "string",
              "null"
            ],
            "description": "Where a conversation may also go once its first-response SLA is breached: `language` (any agent speaking its language) or `team:<team id>`; null for none."
          }
        }
      },
      "TeamEnvelope": {
        "type": "object",
        "required": [
          "team"
        ],
        "properties": {
          "team": {
            "$ref": "\u0023/components/schemas/Team"
          }
        }
      },
      "TeamList": {
        "type": "object",
        "required": [
          "teams"
        ],
        "properties": {
          "teams": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/Team"
            },
            "description": "Sorted by name."
          }
        }
      },
      "RoutingCandidate": {
        "type": "object",
        "required": [
          "agent_id",
          "eligible",
          "reasons",
          "load"
        ],
        "properties": {
          "agent_id": {
            "type": "string"
          },
          "eligible": {
            "type": "boolean"
          },
          "reasons": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "Why the agent was passed over (e.g. `away`, `missing skill …`, `at sms capacity (5/5)`, `not chosen by least-loaded`); empty for the winner."
          },
          "load": {
            "type": [
              "number",
              "null"
            ],
            "description": "Load relative to capacity on the conversation's channel (1 at capacity, or with no capacity there)."
          }
        }
      },
      "RoutingDecision": {
        "type": "object",
        "required": [
          "at",
          "trigger",
          "outcome",
          "agent_id",
          "rule",
          "candidates",
          "candidates_omitted"
        ],
        "properties": {
          "at": {
            "$ref": "\u0023/components/schemas/Timestamp"
          },
          "trigger": {
            "type": "string",
            "enum": [
              "arrived",
              "declined",
              "offer_expired",
              "agent_available",
              "escalated",
              "transferred",
              "handed_back",
              "offer_withdrawn",
              "restored"
            ],
            "description": "Why routing looked at the conversation."
          },
          "outcome": {
            "type": "string",
            "enum": [
              "offered",
              "assigned",
              "queued"
            ]
          },
          "agent_id": {
            "type": [
              "string",
              "null"
            ]
          },
          "rule": {
            "type": "string",
            "description": "The rule that chose (`sticky`, `least-loaded`, `round-robin`, `manual`, `transfer`, `claim`), or why nobody was chosen."
          },
          "candidates": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/RoutingCandidate"
            }
          },
          "candidates_omitted": {
            "type": "integer",
            "description": "Passed-over candidates not recorded (a decision records at most 50)."
          }
        }
      },
      "RoutingLog": {
        "type": "object",
        "required": [
          "conversation_id",
          "decisions"
        ],
        "properties": {
          "conversation_id": {
            "type": "string"
          },
          "decisions": {
            "type": "array",
            "items": {
              "$ref": "\u0023/components/schemas/RoutingDecision"
            },
            "description": "Oldest first."
          }
        }
      },
      "QueuePosition": {
        "type": "object",
        "required": [
          "conversation_id",
          "queued",
          "position",
          "estimated_wait_seconds"
        ],
        "properties": {
          "conversation_id": {
            "type": "string"
          },
          "queued": {
            "type": "boolean",
            "description": "False when the conversation is offered, assigned, resolved or not routed yet (e.g. waiting for triage)."
          },
          "position": {
            "type": [
              "integer",
              "null"
            ],
            "description": "Place in its queue; null when not queued."
          },
          "estimated_wait_seconds": {
            "type": [
              "integer",
              "null"
            ],
            "description": "Null when not queued or no estimate can be made."
          }
        }
      },
      "ReplyRequest": {
        "type": "object",
        "required": [
          "text"
        ],
        "properties": {
          "text": {
            "type": "string",
            "minLength": 1,
            "description": "Plain text; not only whitespace; at most 32768 bytes of UTF-8 (413 beyond)."
          }
        }
      },
      "PresenceRequest": {
        "type": "object",
        "required": [
          "presence"
        ],
        "properties": {
          "presence": {
            "$ref": "\u0023/components/schemas/Presence"
          }
        }
      },
      "TransferRequest": {
        "type": "object",
        "description": "Exactly one of `to_agent` and `to_team` (a null or blank value counts as absent); otherwise 400.",
        "properties": {
          "to_agent": {
            "type": [
              "string",
              "null"
            ],
            "description": "An active agent's id: the conversation is assigned to them directly (even above their capacity)."
          },
          "to_team": {
            "type": [
              "string",
              "null"
            ],
            "description": "A team name or id: the conversation joins that team's queue."
          },
          "note": {
            "type": [
              "string",
              "null"
            ],
            "description": "An internal note recorded with the transfer; at most 16384 bytes (413 beyond)."
          }
        },
        "example": {
          "to_team": "billing",
          "note": "Question about an invoice"
        }
      },
      "NoteRequest": {
        "type": "object",
        "required": [
          "text"
        ],
        "properties": {
          "text": {
            "type": "string",
            "minLength": 1,
            "description": "Trimmed; must not be blank (400); at most 16384 bytes (413 beyond)."
          }
        }
      },
      "AgentUpdate": {
        "type": "object",
        "description": "Fields left out stay as they are. Unknown fields are a 400.",
        "additionalProperties": false,
        "properties": {
          "role": {
            "$ref": "\u0023/components/schemas/AgentRole"
          },
          "skills": {
            "type": "array",
            "maxItems": 100,
            "items": {
              "type": "string",
              "maxLength": 64
            },
            "description": "Replaces the skills (trimmed, lower-cased, deduplicated). At most 100 strings of at most 64 bytes."
          },
          "languages": {
            "type": "array",
            "maxItems": 100,
            "items": {
              "type": "string",
              "maxLength": 64
            },
            "description": "Replaces the languages (trimmed, lower-cased, deduplicated). At most 100 strings of at most 64 bytes."
          },
          "capacity": {
            "type": "object",
            "description": "Replaces the capacity: channel to a whole number from 0 to 1000.",
            "propertyNames": {
              "$ref": "\u0023/components/schemas/Channel"
            },
            "additionalProperties": {
              "type": "integer",
              "minimum": 0,
              "maximum": 1000
            }
          },
          "teams": {
            "type": "array",
            "maxItems": 100,
            "items": {
              "type": "string",
              "maxLength": 64
            },
            "description": "Replaces the agent's teams (names or ids); teams that do not exist are created."
          }
        },
        "example": {
          "role": "supervisor",
          "skills": [
            "billing"
          ],
          "languages": [
            "en",
            "es"
          ],
          "capacity": {
            "sms": 5,
            "portal": 8
          },
          "teams": [
            "front-desk"
          ]
        }
      },
      "TeamUpdate": {
        "type": "object",
        "description": "Fields left out stay as they are (a new team gets least-loaded, no auto-accept, no overflow). Unknown fields are a 400.",
        "additionalProperties": false,
        "properties": {
          "policy": {
            "$ref": "\u0023/components/schemas/RoutingPolicy"
          },
          "auto_accept": {
            "type": "boolean"
          },
          "overflow": {
            "type": [
              "string",
              "null"
            ],
            "minLength": 1,
            "description": "`language`, another existing team's name or id (not this team), or null to remove the overflow."
          }
        },
        "example": {
          "policy": "round-robin",
          "auto_accept": false,
          "overflow": "language"
        }
      },
      "PortalInboundEvent": {
        "type": "object",
        "required": [
          "type",
          "patient",
          "message"
        ],
        "properties": {
          "type": {
            "type": "string",
            "const": "message.created"
          },
          "patient": {
            "type": "object",
            "required": [
              "id"
            ],
            "properties": {
              "id": {
                "type": "string",
                "description": "The portal's patient id (at most 256 bytes)."
              },
              "name": {
                "type": "string"
              },
              "phone": {
                "type": "string",
                "description": "Normalised to E.164 (national numbers use phone.default_country_code); an invalid number is a 400."
              },
              "email": {
                "type": "string",
                "description": "Compared lower-cased."
              }
            }
          },
          "thread_id": {
            "type": "string",
            "description": "The portal's thread id (at most 256 bytes). Without it the message joins the contact's latest unresolved portal conversation."
          },
          "message": {
            "type": "object",
            "required": [
              "id",
              "text",
              "sent_at"
            ],
            "properties": {
              "id": {
                "type": "string",
                "description": "The portal's message id (at most 256 bytes)."
              },
              "text": {
                "type": "string"
              },
              "sent_at": {
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339 / ISO 8601."
              }
            }
          }
        },
        "example": {
          "type": "message.created",
          "patient": {
            "id": "P-1001",
            "name": "Alex Example",
            "phone": "+1 555 010 0100",
            "email": "Alex.Example@example.org"
          },
          "thread_id": "T-1",
          "message": {
            "id": "M-1",
            "text": "Could my appointment on Thursday be moved to the afternoon?",
            "sent_at": "2026-11-29T10:00:00Z"
          }
        }
      },
      "PortalAccepted": {
        "type": "object",
        "required": [
          "conversation_id",
          "message_id"
        ],
        "properties": {
          "conversation_id": {
            "type": "string"
          },
          "message_id": {
            "type": "string"
          }
        }
      },
      "TwilioMessageForm": {
        "type": "object",
        "description": "Twilio's incoming-message parameters (others are accepted and ignored, but are covered by the signature).",
        "required": [
          "From",
          "To"
        ],
        "properties": {
          "MessageSid": {
            "type": "string",
            "maxLength": 64,
            "description": "The dedupe key (SmsSid is accepted instead)."
          },
          "SmsSid": {
            "type": "string"
          },
          "From": {
            "type": "string",
            "description": "The patient's number; must normalise to E.164."
          },
          "To": {
            "type": "string"
          },
          "Body": {
            "type": "string",
            "description": "May be empty only when there is media."
          },
          "NumMedia": {
            "type": "string",
            "description": "Number of media items (at most 10 are read)."
          }
        },
        "patternProperties": {
          "^MediaUrl[0-9]$": {
            "type": "string",
            "description": "http(s) URL of one media item, stored as an attachment reference."
          },
          "^MediaContentType[0-9]$": {
            "type": "string"
          }
        },
        "additionalProperties": {
          "type": "string"
        }
      },
      "TwilioStatusForm": {
        "type": "object",
        "description": "Twilio's status callback parameters (others are accepted and ignored).",
        "properties": {
          "MessageSid": {
            "type": "string",
            "description": "SmsSid is accepted instead."
          },
          "SmsSid": {
            "type": "string"
          },
          "MessageStatus": {
            "type": "string",
            "enum": [
              "accepted",
              "scheduled",
              "queued",
              "sending",
              "sent",
              "delivered",
              "read",
              "undelivered",
              "failed",
              "canceled"
            ],
            "description": "Maps to delivery_status: accepted/scheduled/queued to queued, sending/sent to sent, delivered/read to delivered, undelivered/failed/canceled to failed. SmsStatus is accepted instead."
          },
          "SmsStatus": {
            "type": "string"
          },
          "ErrorCode": {
            "type": "string",
            "description": "Twilio error code; described in the failure_reason of a failed message."
          }
        },
        "additionalProperties": {
          "type": "string"
        }
      }
    },
    "parameters": {
      "ConversationId": {
        "name": "id",
        "in": "path",
        "required": true,
        "description": "Conversation id (at most 64 bytes; longer is a 404).",
        "schema": {
          "type": "string",
          "maxLength": 64
        }
      },
      "AgentId": {
        "name": "agent",
        "in": "path",
        "required": true,
        "description": "Agent id (at most 64 bytes; longer is a 404).",
        "schema": {
          "type": "string",
          "maxLength": 64
        }
      },
      "TeamName": {
        "name": "team",
        "in": "path",
        "required": true,
        "description": "Team name: created when no team has this name (at most 64 bytes; longer is a 404).",
        "schema": {
          "type": "string",
          "maxLength": 64
        }
      },
      "KannelSecret": {
        "name": "secret",
        "in": "query",
        "required": false,
        "description": "kannel.shared_secret, compared in constant time. Not needed from an address in kannel.allowed_sources.",
        "schema": {
          "type": "string"
        }
      }
    },
    "headers": {
      "WWWAuthenticate": {
        "description": "`Bearer` when the token is missing or malformed; `Bearer error=\"invalid_token\"` when it is unknown or revoked.",
        "schema": {
          "type": "string"
        }
      },
      "RetryAfter": {
        "description": "Seconds to wait before retrying (5).",
        "schema": {
          "type": "integer"
        }
      }
    },
    "responses": {
      "BadRequest": {
        "description": "`bad_request`: the body is not a JSON object, or a field or query parameter is missing or invalid (named in the message).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "`unauthorized`: missing, malformed, unknown or revoked bearer token.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        },
        "headers": {
          "WWW-Authenticate": {
            "$ref": "\u0023/components/headers/WWWAuthenticate"
          }
        }
      },
      "Forbidden": {
        "description": "`forbidden`: the caller's role may not do this; the message names the role needed.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "`not_found`: unknown id, or a conversation the caller may not see (indistinguishable from an unknown one).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      },
      "Conflict": {
        "description": "`conflict`: the change contradicts the conversation's state (the message says why).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      },
      "PayloadTooLarge": {
        "description": "`payload_too_large`: the body, or a text field, is over its limit.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      },
      "UnsupportedMediaType": {
        "description": "`unsupported_media_type`: the body is not sent as `application/json`.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      },
      "InternalError": {
        "description": "`internal_error`: the request could not be completed (e.g. the store failed); see the daemon's log.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "\u0023/components/schemas/Error"
            }
          }
        }
      }
    }
  }
}
"""#
}
