from costmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PruneRequest(_message.Message):
    __slots__ = ("tenant", "conversation_id", "messages", "max_tokens", "keep_last")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KEEP_LAST_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    conversation_id: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    max_tokens: int
    keep_last: int
    def __init__(self, tenant: _Optional[str] = ..., conversation_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., keep_last: _Optional[int] = ...) -> None: ...

class PruneResponse(_message.Message):
    __slots__ = ("messages", "report")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    report: _common_pb2.PruningReport
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., report: _Optional[_Union[_common_pb2.PruningReport, _Mapping]] = ...) -> None: ...
