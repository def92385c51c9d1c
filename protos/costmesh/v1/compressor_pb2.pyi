from costmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CompressRequest(_message.Message):
    __slots__ = ("tenant", "documents", "target_ratio", "question")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_RATIO_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    documents: _containers.RepeatedCompositeFieldContainer[_common_pb2.Document]
    target_ratio: float
    question: str
    def __init__(self, tenant: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[_common_pb2.Document, _Mapping]]] = ..., target_ratio: _Optional[float] = ..., question: _Optional[str] = ...) -> None: ...

class CompressResponse(_message.Message):
    __slots__ = ("documents", "report")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[_common_pb2.Document]
    report: _common_pb2.CompressionReport
    def __init__(self, documents: _Optional[_Iterable[_Union[_common_pb2.Document, _Mapping]]] = ..., report: _Optional[_Union[_common_pb2.CompressionReport, _Mapping]] = ...) -> None: ...
