//! Hand-written helpers beside the generated code (the Go equivalent is Thanos's
//! `storepb/custom.go`): constructors for `SeriesResponse` frames, `Any` packing of hints with
//! the type URLs Thanos uses, and the mapping between remote-read and StoreAPI chunk encodings
//! and matcher types.

use prost::Message;

use crate::ANY_TYPE_URL_PREFIX;
use crate::hintspb::{SeriesRequestHints, SeriesResponseHints};
use crate::prometheus;
use crate::thanos::{self, series_response};

impl thanos::SeriesResponse {
    /// A frame carrying one complete series.
    pub fn from_series(series: thanos::Series) -> Self {
        Self {
            result: Some(series_response::Result::Series(series)),
        }
    }

    /// A frame carrying several complete series.
    pub fn from_batch(series: Vec<thanos::Series>) -> Self {
        Self {
            result: Some(series_response::Result::Batch(thanos::SeriesBatch {
                series,
            })),
        }
    }

    /// A frame carrying a human-readable warning.
    pub fn from_warning(warning: impl Into<String>) -> Self {
        Self {
            result: Some(series_response::Result::Warning(warning.into())),
        }
    }

    /// A frame carrying store-specific hints.
    pub fn from_hints(hints: prost_types::Any) -> Self {
        Self {
            result: Some(series_response::Result::Hints(hints)),
        }
    }
}

impl thanos::Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A message that travels inside `google.protobuf.Any`, with its fully-qualified proto name.
pub trait AnyMessage: Message + Default + Sized {
    /// Fully-qualified proto message name, e.g. `hintspb.SeriesResponseHints`.
    const FULL_NAME: &'static str;

    /// The type URL Thanos writes (gogo `MarshalAny`): `type.googleapis.com/<full name>`.
    fn type_url() -> String {
        format!("{ANY_TYPE_URL_PREFIX}{}", Self::FULL_NAME)
    }

    /// Pack into `Any` with Thanos's type URL.
    fn to_any(&self) -> prost_types::Any {
        prost_types::Any {
            type_url: Self::type_url(),
            value: self.encode_to_vec(),
        }
    }

    /// Unpack from `Any`; `Ok(None)` when the `Any` holds a different message type.
    fn from_any(any: &prost_types::Any) -> Result<Option<Self>, prost::DecodeError> {
        // Accept any URL prefix: only the part after the last '/' names the type.
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        if name != Self::FULL_NAME {
            return Ok(None);
        }
        Self::decode(any.value.as_slice()).map(Some)
    }
}

impl AnyMessage for SeriesRequestHints {
    const FULL_NAME: &'static str = "hintspb.SeriesRequestHints";
}

impl AnyMessage for SeriesResponseHints {
    const FULL_NAME: &'static str = "hintspb.SeriesResponseHints";
}

/// StoreAPI chunk encoding for a remote-read chunk encoding. Remote read numbers them one
/// higher (UNKNOWN=0), so the sidecar subtracts one; `None` for UNKNOWN or encodings the
/// StoreAPI has no name for.
pub fn thanos_encoding_from_remote_read(encoding: i32) -> Option<thanos::chunk::Encoding> {
    match prometheus::chunk::Encoding::try_from(encoding).ok()? {
        prometheus::chunk::Encoding::Unknown => None,
        prometheus::chunk::Encoding::Xor => Some(thanos::chunk::Encoding::Xor),
        prometheus::chunk::Encoding::Histogram => Some(thanos::chunk::Encoding::Histogram),
        prometheus::chunk::Encoding::FloatHistogram => {
            Some(thanos::chunk::Encoding::FloatHistogram)
        }
    }
}

impl From<thanos::label_matcher::Type> for prometheus::label_matcher::Type {
    fn from(matcher_type: thanos::label_matcher::Type) -> Self {
        match matcher_type {
            thanos::label_matcher::Type::Eq => Self::Eq,
            thanos::label_matcher::Type::Neq => Self::Neq,
            thanos::label_matcher::Type::Re => Self::Re,
            thanos::label_matcher::Type::Nre => Self::Nre,
        }
    }
}

impl From<&thanos::LabelMatcher> for prometheus::LabelMatcher {
    fn from(matcher: &thanos::LabelMatcher) -> Self {
        // An out-of-range type decodes as EQ in prost's accessor; callers that must reject
        // such matchers validate them with `thanos::label_matcher::Type::try_from` first.
        let matcher_type = prometheus::label_matcher::Type::from(matcher.r#type());
        Self {
            r#type: matcher_type as i32,
            name: matcher.name.clone(),
            value: matcher.value.clone(),
        }
    }
}

impl From<&thanos::Label> for prometheus::Label {
    fn from(label: &thanos::Label) -> Self {
        Self {
            name: label.name.clone(),
            value: label.value.clone(),
        }
    }
}

impl From<prometheus::Label> for thanos::Label {
    fn from(label: prometheus::Label) -> Self {
        Self {
            name: label.name,
            value: label.value,
        }
    }
}
