from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_TOOL: _ClassVar[Role]

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_SMALL: _ClassVar[Tier]
    TIER_LARGE: _ClassVar[Tier]

class DocumentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_KIND_UNSPECIFIED: _ClassVar[DocumentKind]
    DOCUMENT_KIND_CONTEXT: _ClassVar[DocumentKind]
    DOCUMENT_KIND_EXAMPLE: _ClassVar[DocumentKind]
    DOCUMENT_KIND_FIXED: _ClassVar[DocumentKind]

class CacheHitKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_HIT_KIND_UNSPECIFIED: _ClassVar[CacheHitKind]
    CACHE_HIT_KIND_MISS: _ClassVar[CacheHitKind]
    CACHE_HIT_KIND_EXACT: _ClassVar[CacheHitKind]
    CACHE_HIT_KIND_SEMANTIC: _ClassVar[CacheHitKind]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_TOOL: Role
TIER_UNSPECIFIED: Tier
TIER_SMALL: Tier
TIER_LARGE: Tier
DOCUMENT_KIND_UNSPECIFIED: DocumentKind
DOCUMENT_KIND_CONTEXT: DocumentKind
DOCUMENT_KIND_EXAMPLE: DocumentKind
DOCUMENT_KIND_FIXED: DocumentKind
CACHE_HIT_KIND_UNSPECIFIED: CacheHitKind
CACHE_HIT_KIND_MISS: CacheHitKind
CACHE_HIT_KIND_EXACT: CacheHitKind
CACHE_HIT_KIND_SEMANTIC: CacheHitKind

class Message(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_p", "max_tokens", "stop", "seed", "logprobs")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    max_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    logprobs: bool
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., logprobs: bool = ...) -> None: ...

class CacheControl(_message.Message):
    __slots__ = ("no_cache", "no_store", "max_age_s", "ttl_s", "similarity_threshold", "allow_sampled")
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    NO_STORE_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_S_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SAMPLED_FIELD_NUMBER: _ClassVar[int]
    no_cache: bool
    no_store: bool
    max_age_s: int
    ttl_s: int
    similarity_threshold: float
    allow_sampled: bool
    def __init__(self, no_cache: bool = ..., no_store: bool = ..., max_age_s: _Optional[int] = ..., ttl_s: _Optional[int] = ..., similarity_threshold: _Optional[float] = ..., allow_sampled: bool = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("id", "text", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    kind: DocumentKind
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., kind: _Optional[_Union[DocumentKind, str]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_prompt_tokens: _Optional[int] = ...) -> None: ...

class CostReport(_message.Message):
    __slots__ = ("cost_usd", "baseline_cost_usd", "savings_usd", "price_model")
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_COST_USD_FIELD_NUMBER: _ClassVar[int]
    SAVINGS_USD_FIELD_NUMBER: _ClassVar[int]
    PRICE_MODEL_FIELD_NUMBER: _ClassVar[int]
    cost_usd: float
    baseline_cost_usd: float
    savings_usd: float
    price_model: str
    def __init__(self, cost_usd: _Optional[float] = ..., baseline_cost_usd: _Optional[float] = ..., savings_usd: _Optional[float] = ..., price_model: _Optional[str] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("tier", "confidence", "reason", "classifier", "fell_back", "escalated", "escalation_reason")
    TIER_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    FELL_BACK_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    tier: Tier
    confidence: float
    reason: str
    classifier: str
    fell_back: bool
    escalated: bool
    escalation_reason: str
    def __init__(self, tier: _Optional[_Union[Tier, str]] = ..., confidence: _Optional[float] = ..., reason: _Optional[str] = ..., classifier: _Optional[str] = ..., fell_back: bool = ..., escalated: bool = ..., escalation_reason: _Optional[str] = ...) -> None: ...

class CacheDecision(_message.Message):
    __slots__ = ("kind", "similarity", "key", "reason", "skipped", "degraded", "age_s")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    AGE_S_FIELD_NUMBER: _ClassVar[int]
    kind: CacheHitKind
    similarity: float
    key: str
    reason: str
    skipped: bool
    degraded: bool
    age_s: int
    def __init__(self, kind: _Optional[_Union[CacheHitKind, str]] = ..., similarity: _Optional[float] = ..., key: _Optional[str] = ..., reason: _Optional[str] = ..., skipped: bool = ..., degraded: bool = ..., age_s: _Optional[int] = ...) -> None: ...

class CompressionReport(_message.Message):
    __slots__ = ("applied", "tokens_before", "tokens_after", "method", "degraded")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_AFTER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    tokens_before: int
    tokens_after: int
    method: str
    degraded: bool
    def __init__(self, applied: bool = ..., tokens_before: _Optional[int] = ..., tokens_after: _Optional[int] = ..., method: _Optional[str] = ..., degraded: bool = ...) -> None: ...

class PruningReport(_message.Message):
    __slots__ = ("applied", "tokens_before", "tokens_after", "messages_summarized", "degraded")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_AFTER_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SUMMARIZED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    tokens_before: int
    tokens_after: int
    messages_summarized: int
    degraded: bool
    def __init__(self, applied: bool = ..., tokens_before: _Optional[int] = ..., tokens_after: _Optional[int] = ..., messages_summarized: _Optional[int] = ..., degraded: bool = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "duration_ms", "outcome")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    stage: str
    duration_ms: float
    outcome: str
    def __init__(self, stage: _Optional[str] = ..., duration_ms: _Optional[float] = ..., outcome: _Optional[str] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values", "model")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    model: str
    def __init__(self, values: _Optional[_Iterable[float]] = ..., model: _Optional[str] = ...) -> None: ...
