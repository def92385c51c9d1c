from costmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RouteRequest(_message.Message):
    __slots__ = ("tenant", "messages", "embedding", "threshold")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    embedding: _common_pb2.Embedding
    threshold: float
    def __init__(self, tenant: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., embedding: _Optional[_Union[_common_pb2.Embedding, _Mapping]] = ..., threshold: _Optional[float] = ...) -> None: ...

class RouteResponse(_message.Message):
    __slots__ = ("decision", "needs_multi_step", "features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DECISION_FIELD_NUMBER: _ClassVar[int]
    NEEDS_MULTI_STEP_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    decision: _common_pb2.RouteDecision
    needs_multi_step: bool
    features: _containers.ScalarMap[str, float]
    def __init__(self, decision: _Optional[_Union[_common_pb2.RouteDecision, _Mapping]] = ..., needs_multi_step: bool = ..., features: _Optional[_Mapping[str, float]] = ...) -> None: ...
