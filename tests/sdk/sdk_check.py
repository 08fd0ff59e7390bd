"""Exercise every Conversations API method of the official `openai` Python SDK
against a running convo server, and check that errors surface as the SDK's own
exception classes.

Environment:
  CONVO_BASE_URL       server root, e.g. http://127.0.0.1:8080 (no /v1)
  CONVO_API_KEY        a user key (any string in local single-user mode)
  CONVO_API_KEY_OTHER  optional: a key of another user (isolation checks)
  CONVO_KEYED          "1" when the server checks keys (enables the 401 checks)
"""

import os
import sys
import time

import openai
from openai import AuthenticationError, BadRequestError, NotFoundError, OpenAI

BASE = os.environ["CONVO_BASE_URL"].rstrip("/") + "/v1"
KEY = os.environ.get("CONVO_API_KEY", "local")
OTHER = os.environ.get("CONVO_API_KEY_OTHER")
KEYED = os.environ.get("CONVO_KEYED") == "1"

client = OpenAI(base_url=BASE, api_key=KEY)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


def raises(exc, fn, param=None):
    try:
        fn()
    except exc as e:
        check(isinstance(e.body, dict) and "message" in e.body, f"{exc.__name__} carries the error body")
        if param is not None:
            check(e.param == param, f"param {e.param!r} == {param!r}")
        return e
    except openai.APIError as e:  # the wrong class
        raise AssertionError(f"expected {exc.__name__}, got {type(e).__name__} ({e.status_code}): {e}")
    raise AssertionError(f"expected {exc.__name__}, nothing was raised")


def main():
    before = int(time.time())

    # conversations.create with items and metadata
    conv = client.conversations.create(
        items=[
            {"type": "message", "role": "system", "content": "You are terse."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        ],
        metadata={"topic": "weather", "ticket": "42"},
    )
    check(conv.id.startswith("conv_"), "conversation id prefix")
    check(conv.object == "conversation", "conversation object")
    check(isinstance(conv.created_at, int) and before - 5 <= conv.created_at <= time.time() + 5, "created_at unix seconds")
    check(conv.metadata == {"topic": "weather", "ticket": "42"}, "metadata kept")

    # create with nothing
    empty = client.conversations.create()
    check(empty.metadata == {}, "metadata defaults to {}")

    # retrieve
    got = client.conversations.retrieve(conv.id)
    check(got.id == conv.id and got.metadata == conv.metadata, "retrieve")

    # update: replaces the map
    upd = client.conversations.update(conv.id, metadata={"topic": "travel"})
    check(upd.metadata == {"topic": "travel"}, "update replaces metadata")
    check(client.conversations.retrieve(conv.id).metadata == {"topic": "travel"}, "update persisted")

    # update with metadata=None clears it (3.x types allow it; 1.x sends the same null)
    cleared = client.conversations.update(empty.id, metadata=None)
    check(cleared.metadata == {}, "update(metadata=None) clears")

    # items.create: message shorthand, assistant text, function call and output
    created = client.conversations.items.create(
        conv.id,
        items=[
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
            {"role": "assistant", "content": "It is 18C and sunny."},
        ],
        include=["message.output_text.logprobs"],
    )
    check(created.object == "list" and len(created.data) == 4, "items.create returns the new items")
    check(created.has_more is False, "items.create has_more false")
    check(created.first_id == created.data[0].id and created.last_id == created.data[-1].id, "first/last ids")
    msg, call, out, final = created.data
    check(msg.type == "message" and msg.role == "assistant" and msg.status == "completed", "message item")
    check(msg.content[0].type == "output_text" and msg.content[0].annotations == [], "output_text annotations")
    check(call.type == "function_call" and call.id.startswith("fc_"), "function_call item")
    check(call.arguments == '{"city":"Paris"}' and call.call_id == "call_1" and call.name == "get_weather", "call fields verbatim")
    check(out.type == "function_call_output" and out.output == "18C, sunny", "function_call_output item")
    check(final.content[0].type == "output_text" and final.content[0].text == "It is 18C and sunny.", "shorthand assistant text")

    # items.list with auto-paging, both orders
    asc = [i.id for i in client.conversations.items.list(conv.id, limit=2, order="asc")]
    check(len(asc) == 6, f"auto-paging saw every item ({len(asc)})")
    check(asc[2:] == [i.id for i in created.data], "asc is insertion order")
    desc = [i.id for i in client.conversations.items.list(conv.id, limit=4, include=["message.input_image.image_url"])]
    check(desc == list(reversed(asc)), "desc (default) is newest first")
    page = client.conversations.items.list(conv.id, limit=6)
    check(len(page.data) == 6 and page.has_more is False, "a page ending on the last item has has_more false")
    first = client.conversations.items.list(conv.id, limit=1, order="asc")
    check(first.has_more is True and first.data[0].id == asc[0], "limit=1")
    after = client.conversations.items.list(conv.id, after=asc[3], order="asc", limit=10)
    check([i.id for i in after.data] == asc[4:], "after")

    # items.retrieve (item id first, conversation id by keyword)
    item = client.conversations.items.retrieve(call.id, conversation_id=conv.id)
    check(item.id == call.id and item.type == "function_call", "items.retrieve")
    item = client.conversations.items.retrieve(msg.id, conversation_id=conv.id, include=["message.output_text.logprobs"])
    check(item.content[0].text == "Checking.", "items.retrieve message")

    # items.delete returns the conversation
    after_delete = client.conversations.items.delete(msg.id, conversation_id=conv.id)
    check(after_delete.object == "conversation" and after_delete.id == conv.id, "items.delete returns the conversation")
    raises(NotFoundError, lambda: client.conversations.items.retrieve(msg.id, conversation_id=conv.id))
    check(len(list(client.conversations.items.list(conv.id))) == 5, "item gone from the list")

    # errors as the SDK's classes
    raises(NotFoundError, lambda: client.conversations.retrieve("conv_does_not_exist"))
    raises(NotFoundError, lambda: client.conversations.items.list("conv_does_not_exist").data)
    raises(NotFoundError, lambda: client.conversations.items.retrieve(call.id, conversation_id=empty.id))
    raises(BadRequestError, lambda: client.conversations.create(
        items=[{"type": "message", "role": "user", "content": str(i)} for i in range(21)]), param="items")
    raises(BadRequestError, lambda: client.conversations.create(metadata={f"k{i}": "v" for i in range(17)}), param="metadata")
    raises(BadRequestError, lambda: client.conversations.create(metadata={"k" * 65: "v"}), param="metadata")
    raises(BadRequestError, lambda: client.conversations.create(metadata={"k": "v" * 513}), param="metadata")
    raises(BadRequestError, lambda: client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]), param="items")
    raises(BadRequestError, lambda: client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "ok"}, {"type": "reasoning", "summary": []}]), param="items")
    raises(BadRequestError, lambda: client.conversations.items.list(conv.id, limit=101), param="limit")
    raises(BadRequestError, lambda: client.conversations.update(conv.id, metadata={f"k{i}": "v" for i in range(17)}), param="metadata")
    check(client.conversations.retrieve(conv.id).metadata == {"topic": "travel"}, "rejected update changed nothing")
    check(len(list(client.conversations.items.list(conv.id))) == 5, "rejected batches stored nothing")

    if KEYED:
        bad = OpenAI(base_url=BASE, api_key="convo_sk_not_a_real_key")
        raises(AuthenticationError, lambda: bad.conversations.retrieve(conv.id))
        raises(AuthenticationError, lambda: bad.conversations.create())
    if OTHER:
        other = OpenAI(base_url=BASE, api_key=OTHER)
        raises(NotFoundError, lambda: other.conversations.retrieve(conv.id))
        raises(NotFoundError, lambda: other.conversations.update(conv.id, metadata={"x": "y"}))
        raises(NotFoundError, lambda: other.conversations.items.list(conv.id).data)
        raises(NotFoundError, lambda: other.conversations.items.create(conv.id, items=[{"role": "user", "content": "hi"}]))
        raises(NotFoundError, lambda: other.conversations.items.retrieve(call.id, conversation_id=conv.id))
        raises(NotFoundError, lambda: other.conversations.items.delete(call.id, conversation_id=conv.id))
        raises(NotFoundError, lambda: other.conversations.delete(conv.id))
        check(client.conversations.retrieve(conv.id).metadata == {"topic": "travel"}, "other user changed nothing")

    # conversations.delete
    deleted = client.conversations.delete(conv.id)
    check(deleted.id == conv.id and deleted.deleted is True and deleted.object == "conversation.deleted", "delete")
    raises(NotFoundError, lambda: client.conversations.retrieve(conv.id))
    raises(NotFoundError, lambda: client.conversations.delete(conv.id))

    # The async client speaks the same wire.
    import asyncio

    async def run_async():
        a = openai.AsyncOpenAI(base_url=BASE, api_key=KEY)
        c = await a.conversations.create(items=[{"role": "user", "content": "async hi"}])
        ids = [i.id async for i in a.conversations.items.list(c.id, limit=1)]
        check(len(ids) == 1, "async auto-paging")
        await a.conversations.delete(c.id)
        await a.close()

    asyncio.run(run_async())
    print(f"sdk_check: openai {openai.__version__}: {checks} checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"sdk_check FAILED: {e}", file=sys.stderr)
        sys.exit(1)
