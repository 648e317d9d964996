"""A turn's files: the new message's, checked before the turn is admitted, and the history's, read again.

`TurnFiles.resolve` reads the new message's attachments from the bucket (side by
side) and checks each by its bytes (claude_chat.attachments) before anything is
written: a bad file refuses the turn with the contract's error, holding no budget.
`prefetch` starts reading the history's files again as soon as the history is
known, so they come in while the turn is admitted, not after; `fill` puts
their bytes into the request just before Claude is called. A file of the
history that no longer fits the provider's request size (newest turns' files
first), or that is gone, is replaced by a line of text saying so.

The turn's worst case counts every file by what Claude bills for it
(`tokens`); the claims the admission writes bind the new message's files to
the conversation (a stateless turn claims none).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from claude_chat import services
from claude_chat.admission import Check
from claude_chat.attachments import (
    MAX_BYTES,
    REQUEST_MAX_BYTES,
    Attachment,
    AttachmentNotFound,
    AttachmentTooLarge,
    InlineFile,
    UnsupportedAttachment,
    block_bytes,
    content_block,
    fill,
    inspect,
    new_id,
)
from claude_chat.caller import Caller
from claude_chat.errors import ApiError

if TYPE_CHECKING:
    from claude_chat.sessions import TurnSession

logger = Logger(child=True)

# Room left in a request for everything but files: the text of a full history, the system prompt.
_TEXT_ROOM_BYTES = 2 * 1024 * 1024


@dataclass
class TurnFiles:
    """The files of one turn's request, by id: content blocks and what each may cost."""

    new: tuple[Attachment, ...] = ()
    owner: str | None = None
    provider: str = "anthropic"
    model: str = ""  # the turn's: history files are counted again for it (tokens_on)
    blocks: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    _pending: dict[str, Future[bytes]] = field(default_factory=dict)
    _room: int = 0
    _inline: dict[str, bytes] = field(default_factory=dict)  # files the body carried: stored once saved
    # A history file went as a line of text (too large to send again, or gone): what Claude bills for
    # this turn's prompt then bounds no later turn's history, which may send that file whole.
    noted: bool = False

    @staticmethod
    def resolve(
        caller: Caller,
        ids: Sequence[str],
        model: str,
        provider: str,
        inline: Sequence[InlineFile] = (),
    ) -> TurnFiles:
        """The new message's files, read and checked side by side; the first refusal in their order.
        `inline`: files the body carried (the AI SDK's `file` parts), checked the same way, and
        stored in the bucket only once the turn is saved (`keep`): a refused turn writes nothing."""
        room = REQUEST_MAX_BYTES.get(provider, REQUEST_MAX_BYTES["bedrock"]) - _TEXT_ROOM_BYTES
        if not ids and not inline:
            return TurnFiles(provider=provider, model=model, _room=room)
        owner = services.sessions().owner(caller.session_token, caller.user)
        if ids and owner is None:  # a caller with no session has uploaded nothing
            raise AttachmentNotFound()
        store = services.attachments()
        reads = [services.pool().submit(_checked, store, owner or "", i, model) for i in ids]
        reads += [services.pool().submit(_inspected, file, model) for file in inline]
        checked: list[tuple[Attachment, bytes]] = []
        failure: BaseException | None = None
        for read in reads:
            try:
                checked.append(read.result())
            except BaseException as error:  # every read is waited for; the first failure answers
                failure = failure or error
        if failure is not None:
            raise failure
        files = TurnFiles(tuple(a for a, _ in checked), owner, provider, model, _room=room)
        files._inline = {a.id: data for a, data in checked[len(ids) :]}
        for attachment, data in checked:
            files._room -= block_bytes(attachment)
            files.blocks[attachment.id] = (content_block(attachment, data), attachment.low)
            files.tokens[attachment.id] = attachment.tokens
        if files._room < 0:
            raise AttachmentTooLarge("These files together are too large for one request to Claude.")
        return files

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.new)

    def prefetch(self, session: TurnSession | None) -> None:
        """Starts reading the history's files (newest turns first while they fit the request)."""
        if session is None:
            return
        owner = session.token.session_id
        for turn in reversed(session.slot.history):
            for attachment in turn.attachments:
                if attachment.id in self.blocks:
                    continue
                if block_bytes(attachment) > self._room:
                    self.blocks[attachment.id] = (_note(attachment, "too large to send again"), 0)
                    self.noted = True
                    continue
                self._room -= block_bytes(attachment)
                self.blocks[attachment.id] = (content_block(attachment, None), attachment.low)
                self.tokens[attachment.id] = attachment.tokens_on(self.model)
                self._pending[attachment.id] = services.pool().submit(_read, owner, attachment)

    def bound(self, request: dict[str, Any], messages: int | None = None) -> int:
        """What the request's files (of its last `messages` messages) may cost, by what Claude bills."""
        chosen = request["messages"] if messages is None else request["messages"][-messages:]
        sent = {id(block) for block, _ in self.blocks.values()}
        total = 0
        for message in chosen:
            content = message["content"]
            if isinstance(content, str):
                continue
            for block in content:
                if id(block) in sent and block.get("type") != "text":
                    total += self._tokens_of(block)
        return total

    def _tokens_of(self, block: dict[str, Any]) -> int:
        for attachment_id, (known, _) in self.blocks.items():
            if known is block:
                return self.tokens.get(attachment_id, 0)
        return 0

    def claims(self, session: TurnSession | None) -> tuple[Check, ...]:
        if session is None or not self.new:
            return ()
        owner = self.owner or session.token.session_id  # a turn with only inline files read no upload
        store = services.attachments()
        return tuple(store.claim(owner, a.id, session.slot.conversation) for a in self.new)

    def fill(self) -> None:
        """The history's files' bytes into their blocks (a file gone since is said to be gone)."""
        for attachment_id, pending in self._pending.items():
            block = self.blocks[attachment_id][0]
            try:
                fill(block, pending.result())
            except Exception as error:
                if not isinstance(error, ApiError):
                    logger.warning("could not read an attachment again", exc_info=True)
                block.clear()
                block.update({"type": "text", "text": "[an attached file that is no longer available]"})
                self.noted = True
        self._pending.clear()

    def keep(self, owner: str) -> None:
        """A saved turn's files stay (tagged so the unused-upload lifecycle rule leaves them); those the
        body carried are stored now, under the conversation's owner, as kept."""
        store = services.attachments()
        uploaded = [a.id for a in self.new if a.id not in self._inline]
        if uploaded:
            store.keep(owner, uploaded)
        for attachment in self.new:
            if attachment.id in self._inline:
                store.put(owner, attachment, self._inline[attachment.id])


def _inspected(file: InlineFile, model: str) -> tuple[Attachment, bytes]:
    return inspect(new_id(), file.name, file.type, file.data, model), file.data


def _checked(store: Any, owner: str, attachment_id: str, model: str) -> tuple[Attachment, bytes]:
    fetched = store.fetch(owner, attachment_id)
    if fetched.type not in MAX_BYTES:
        raise UnsupportedAttachment()
    return inspect(attachment_id, fetched.name, fetched.type, fetched.data, model), fetched.data


def _read(owner: str, attachment: Attachment) -> bytes:
    """The history file's bytes, as they were checked: replaced since (its presigned upload sent
    again), it is as good as gone (never checked, nor counted as it is)."""
    data: bytes = services.attachments().fetch(owner, attachment.id).data
    if not attachment.holds(data):
        raise AttachmentNotFound()
    return data


def _note(attachment: Attachment, why: str) -> dict[str, Any]:
    return {"type": "text", "text": f"[an attached {attachment.type} file, {why}]"}
