//! Function identifiers as the Lambda API accepts them: a name, a partial ARN
//! (`123456789012:function:name`) or a full ARN, each optionally qualified (`:1`, `:$LATEST`).

/// A parsed function identifier.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FunctionRef {
    pub(crate) account_id: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) name: String,
    pub(crate) qualifier: Option<String>,
}

/// Parses a function identifier, or says why it is not one.
pub(crate) fn parse(identifier: &str) -> Result<FunctionRef, String> {
    let parts: Vec<&str> = identifier.split(':').collect();
    let (account_id, region, rest) = match parts.as_slice() {
        [
            "arn",
            "aws",
            "lambda",
            region,
            account,
            "function",
            rest @ ..,
        ] => (Some(account.to_string()), Some(region.to_string()), rest),
        [account, "function", rest @ ..] => (Some(account.to_string()), None, rest),
        rest => (None, None, rest),
    };
    let (name, qualifier) = match rest {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(qualifier.to_string())),
        _ => return Err(format!("'{identifier}' is not a function name or ARN")),
    };
    if name.is_empty() || qualifier.as_deref() == Some("") {
        return Err(format!("'{identifier}' is not a function name or ARN"));
    }
    Ok(FunctionRef {
        account_id,
        region,
        name: name.to_owned(),
        qualifier,
    })
}

/// The unqualified ARN of a function.
pub(crate) fn function_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account_id}:function:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_form_parses() {
        let full = parse("arn:aws:lambda:us-east-1:123456789012:function:greeting:1").unwrap();
        assert_eq!(full.name, "greeting");
        assert_eq!(full.qualifier.as_deref(), Some("1"));
        assert_eq!(full.region.as_deref(), Some("us-east-1"));
        assert_eq!(full.account_id.as_deref(), Some("123456789012"));
        let unqualified = parse("arn:aws:lambda:us-east-1:123456789012:function:greeting").unwrap();
        assert_eq!(unqualified.qualifier, None);
        let partial = parse("123456789012:function:greeting:$LATEST").unwrap();
        assert_eq!(
            (partial.name.as_str(), partial.qualifier.as_deref()),
            ("greeting", Some("$LATEST"))
        );
        assert_eq!(parse("greeting").unwrap().name, "greeting");
        assert_eq!(parse("greeting:2").unwrap().qualifier.as_deref(), Some("2"));
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        for bad in [
            "",
            "a:b:c",
            "arn:aws:lambda:us-east-1:1:function:",
            "greeting:",
            "arn:aws:lambda:r:1:function:f:1:x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
