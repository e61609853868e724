//! Conversions between Strata's label and matcher types (`strata_tsdb::labels`) and the
//! StoreAPI protobuf ones (`strata_proto::thanos`). Matchers from the wire are validated here:
//! an unknown matcher type or a bad regex is an error naming the label, never a panic.

use strata_proto::thanos;
use strata_tsdb::labels::{Label, Labels, MatchType, Matcher};

use crate::error::{Error, Result};

/// Labels from the wire. Thanos sends them sorted; they are re-sorted defensively and
/// duplicate names keep their first value.
pub fn labels_from_proto(labels: Vec<thanos::Label>) -> Labels {
    Labels::new(
        labels
            .into_iter()
            .map(|label| Label::new(label.name, label.value))
            .collect(),
    )
}

/// Labels for the wire, in name order.
pub fn labels_to_proto(labels: &Labels) -> Vec<thanos::Label> {
    labels
        .iter()
        .map(|label| thanos::Label::new(label.name.clone(), label.value.clone()))
        .collect()
}

/// The protobuf type of a matcher kind.
pub fn match_type_to_proto(kind: MatchType) -> thanos::label_matcher::Type {
    match kind {
        MatchType::Equal => thanos::label_matcher::Type::Eq,
        MatchType::NotEqual => thanos::label_matcher::Type::Neq,
        MatchType::Regex => thanos::label_matcher::Type::Re,
        MatchType::NotRegex => thanos::label_matcher::Type::Nre,
    }
}

/// A matcher for the wire.
pub fn matcher_to_proto(matcher: &Matcher) -> thanos::LabelMatcher {
    thanos::LabelMatcher {
        r#type: match_type_to_proto(matcher.kind) as i32,
        name: matcher.name.clone(),
        value: matcher.value.clone(),
    }
}

/// Matchers for the wire.
pub fn matchers_to_proto(matchers: &[Matcher]) -> Vec<thanos::LabelMatcher> {
    matchers.iter().map(matcher_to_proto).collect()
}

/// A matcher from the wire, compiling its regex.
pub fn matcher_from_proto(matcher: &thanos::LabelMatcher) -> Result<Matcher> {
    let kind = match thanos::label_matcher::Type::try_from(matcher.r#type) {
        Ok(thanos::label_matcher::Type::Eq) => MatchType::Equal,
        Ok(thanos::label_matcher::Type::Neq) => MatchType::NotEqual,
        Ok(thanos::label_matcher::Type::Re) => MatchType::Regex,
        Ok(thanos::label_matcher::Type::Nre) => MatchType::NotRegex,
        Err(_) => {
            return Err(Error::UnknownMatcherType {
                name: matcher.name.clone(),
                matcher_type: matcher.r#type,
            });
        }
    };
    Matcher::new(kind, matcher.name.clone(), matcher.value.clone()).map_err(|err| {
        Error::InvalidMatcher {
            name: matcher.name.clone(),
            reason: err.to_string(),
        }
    })
}

/// Matchers from the wire; the first invalid one is the error.
pub fn matchers_from_proto(matchers: &[thanos::LabelMatcher]) -> Result<Vec<Matcher>> {
    matchers.iter().map(matcher_from_proto).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ClassifiedError, ErrorCode};

    #[test]
    fn matchers_round_trip() {
        let matchers =
            strata_tsdb::labels::parse_selector(r#"up{job=~"a.*", env!="x", dc!~"b|c", zone="z"}"#)
                .expect("selector");
        let wire = matchers_to_proto(&matchers);
        assert_eq!(
            wire.first().map(|m| m.r#type),
            Some(thanos::label_matcher::Type::Eq as i32)
        );
        let back = matchers_from_proto(&wire).expect("valid");
        assert_eq!(back, matchers);
        let regex = back.iter().find(|m| m.name == "job").expect("job matcher");
        assert!(regex.matches("abc"));
        assert!(!regex.matches("xabc"), "regex is anchored");
    }

    #[test]
    fn bad_matchers_are_errors() {
        let unknown = thanos::LabelMatcher {
            r#type: 7,
            name: "job".into(),
            value: "x".into(),
        };
        let err = matcher_from_proto(&unknown).expect_err("unknown type");
        assert_eq!(err.error_code(), ErrorCode::BadData);
        assert!(err.to_string().contains("job"), "{err}");
        let bad_regex = thanos::LabelMatcher {
            r#type: 2,
            name: "job".into(),
            value: "(".into(),
        };
        let err = matcher_from_proto(&bad_regex).expect_err("bad regex");
        assert_eq!(err.to_grpc_status().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn labels_round_trip_sorted() {
        let wire = vec![thanos::Label::new("b", "2"), thanos::Label::new("a", "1")];
        let labels = labels_from_proto(wire);
        assert_eq!(labels.to_string(), r#"{a="1", b="2"}"#);
        let back = labels_to_proto(&labels);
        assert_eq!(
            back,
            vec![thanos::Label::new("a", "1"), thanos::Label::new("b", "2")]
        );
    }
}
