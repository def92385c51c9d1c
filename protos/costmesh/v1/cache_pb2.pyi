from costmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheKeyMaterial(_message.Message):
    __slots__ = ("tenant", "messages", "documents", "sampling", "tier", "response_format")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    documents: _containers.RepeatedCompositeFieldContainer[_common_pb2.Document]
    sampling: _common_pb2.SamplingParams
    tier: _common_pb2.Tier
    response_format: str
    def __init__(self, tenant: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., documents: _Optional[_Iterable[_Union[_common_pb2.Document, _Mapping]]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., response_format: _Optional[str] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("key", "control", "embedding")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    key: CacheKeyMaterial
    control: _common_pb2.CacheControl
    embedding: _common_pb2.Embedding
    def __init__(self, key: _Optional[_Union[CacheKeyMaterial, _Mapping]] = ..., control: _Optional[_Union[_common_pb2.CacheControl, _Mapping]] = ..., embedding: _Optional[_Union[_common_pb2.Embedding, _Mapping]] = ...) -> None: ...

class CachedAnswer(_message.Message):
    __slots__ = ("answer", "model", "tier", "finish_reason", "usage", "cost_usd", "baseline_cost_usd", "created_unix_s")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_COST_USD_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    answer: str
    model: str
    tier: _common_pb2.Tier
    finish_reason: str
    usage: _common_pb2.TokenUsage
    cost_usd: float
    baseline_cost_usd: float
    created_unix_s: int
    def __init__(self, answer: _Optional[str] = ..., model: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., finish_reason: _Optional[str] = ..., usage: _Optional[_Union[_common_pb2.TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., baseline_cost_usd: _Optional[float] = ..., created_unix_s: _Optional[int] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("decision", "answer")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    decision: _common_pb2.CacheDecision
    answer: CachedAnswer
    def __init__(self, decision: _Optional[_Union[_common_pb2.CacheDecision, _Mapping]] = ..., answer: _Optional[_Union[CachedAnswer, _Mapping]] = ...) -> None: ...

class StoreRequest(_message.Message):
    __slots__ = ("key", "control", "embedding", "answer")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    key: CacheKeyMaterial
    control: _common_pb2.CacheControl
    embedding: _common_pb2.Embedding
    answer: CachedAnswer
    def __init__(self, key: _Optional[_Union[CacheKeyMaterial, _Mapping]] = ..., control: _Optional[_Union[_common_pb2.CacheControl, _Mapping]] = ..., embedding: _Optional[_Union[_common_pb2.Embedding, _Mapping]] = ..., answer: _Optional[_Union[CachedAnswer, _Mapping]] = ...) -> None: ...

class StoreResponse(_message.Message):
    __slots__ = ("stored", "key", "reason")
    STORED_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stored: bool
    key: str
    reason: str
    def __init__(self, stored: bool = ..., key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class InvalidateRequest(_message.Message):
    __slots__ = ("tenant", "key", "all", "older_than_s")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_S_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    key: str
    all: bool
    older_than_s: int
    def __init__(self, tenant: _Optional[str] = ..., key: _Optional[str] = ..., all: bool = ..., older_than_s: _Optional[int] = ...) -> None: ...

class InvalidateResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...
