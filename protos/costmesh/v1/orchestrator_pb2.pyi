from costmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CompletionRequest(_message.Message):
    __slots__ = ("tenant", "request_id", "conversation_id", "messages", "documents", "sampling", "cache", "tier", "response_format", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    request_id: str
    conversation_id: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    documents: _containers.RepeatedCompositeFieldContainer[_common_pb2.Document]
    sampling: _common_pb2.SamplingParams
    cache: _common_pb2.CacheControl
    tier: _common_pb2.Tier
    response_format: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, tenant: _Optional[str] = ..., request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., documents: _Optional[_Iterable[_Union[_common_pb2.Document, _Mapping]]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., cache: _Optional[_Union[_common_pb2.CacheControl, _Mapping]] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., response_format: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CompletionResponse(_message.Message):
    __slots__ = ("request_id", "answer", "model", "finish_reason", "route", "cache", "compression", "pruning", "usage", "cost", "trace_id", "stages")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    PRUNING_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    answer: str
    model: str
    finish_reason: str
    route: _common_pb2.RouteDecision
    cache: _common_pb2.CacheDecision
    compression: _common_pb2.CompressionReport
    pruning: _common_pb2.PruningReport
    usage: _common_pb2.TokenUsage
    cost: _common_pb2.CostReport
    trace_id: str
    stages: _containers.RepeatedCompositeFieldContainer[_common_pb2.StageTiming]
    def __init__(self, request_id: _Optional[str] = ..., answer: _Optional[str] = ..., model: _Optional[str] = ..., finish_reason: _Optional[str] = ..., route: _Optional[_Union[_common_pb2.RouteDecision, _Mapping]] = ..., cache: _Optional[_Union[_common_pb2.CacheDecision, _Mapping]] = ..., compression: _Optional[_Union[_common_pb2.CompressionReport, _Mapping]] = ..., pruning: _Optional[_Union[_common_pb2.PruningReport, _Mapping]] = ..., usage: _Optional[_Union[_common_pb2.TokenUsage, _Mapping]] = ..., cost: _Optional[_Union[_common_pb2.CostReport, _Mapping]] = ..., trace_id: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[_common_pb2.StageTiming, _Mapping]]] = ...) -> None: ...

class CompletionChunk(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: str
    final: CompletionResponse
    def __init__(self, delta: _Optional[str] = ..., final: _Optional[_Union[CompletionResponse, _Mapping]] = ...) -> None: ...
