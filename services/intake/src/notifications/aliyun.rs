//! Alibaba Cloud SMS (短信服务, `dysmsapi`, `SendSms` of version
//! 2017-05-25): an HTTP GET whose query is signed with the RPC signature
//! (HMAC-SHA1 over the sorted, percent-encoded parameters, keyed with the
//! AccessKey secret and `&`). The sign name (签名) and one approved template
//! per kind of message come from configuration; the template parameters are
//! the message's (`case_number`, `items`, `line`, `outcome`, `amount`).

use super::{SendError, Sending, SmsProvider, kind_code};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use onedoor_contracts::intake::NotificationRequested;
use std::collections::BTreeMap;
use std::time::Duration;

/// The provider's settings (`ALIYUN_SMS_*`, `ALIYUN_ACCESS_KEY_*`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `https://dysmsapi.aliyuncs.com` unless configured (a private endpoint, a test's receiver).
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub sign_name: String,
    /// Template codes for `accepted`, `notice` and `decision`.
    pub templates: BTreeMap<String, String>,
}

pub struct AliyunSms {
    settings: Settings,
    http: reqwest::Client,
}

impl AliyunSms {
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        for (name, value) in [
            ("ALIYUN_ACCESS_KEY_ID", &settings.access_key_id),
            ("ALIYUN_ACCESS_KEY_SECRET", &settings.access_key_secret),
            ("ALIYUN_SMS_SIGN_NAME", &settings.sign_name),
        ] {
            anyhow::ensure!(!value.trim().is_empty(), "the aliyun SMS provider needs {name}");
        }
        for kind in ["accepted", "notice", "decision"] {
            anyhow::ensure!(
                settings.templates.get(kind).is_some_and(|t| !t.trim().is_empty()),
                "the aliyun SMS provider needs the template for `{kind}` (ALIYUN_SMS_TEMPLATE_{})",
                kind.to_uppercase()
            );
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { settings, http })
    }

    /// The request's parameters, signed.
    pub fn signed_params(
        &self,
        message: &NotificationRequested,
        nonce: &str,
        timestamp: &str,
    ) -> BTreeMap<String, String> {
        let s = &self.settings;
        let template = s.templates.get(kind_code(message.kind)).cloned().unwrap_or_default();
        let mut params: BTreeMap<String, String> = [
            ("AccessKeyId", s.access_key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("PhoneNumbers", message.phone.as_str()),
            ("RegionId", "cn-hangzhou"),
            ("SignName", s.sign_name.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", template.as_str()),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.insert("TemplateParam".into(), serde_json::to_string(&message.params).unwrap_or_default());
        params.insert("OutId".into(), message.notification_id.to_string());
        let signature = sign("GET", &params, &s.access_key_secret);
        params.insert("Signature".into(), signature);
        params
    }
}

/// Percent-encoding as the signature wants it: RFC 3986's unreserved
/// characters stay, everything else is `%XX` (UTF-8, upper case).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The query string of `params` (sorted by name, each part percent-encoded).
pub fn canonical_query(params: &BTreeMap<String, String>) -> String {
    params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// The RPC signature of `params` (without `Signature`) for `method`.
pub fn sign(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let string_to_sign = format!("{method}&{}&{}", percent_encode("/"), percent_encode(&canonical_query(params)));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Codes of refusals that a retry cannot change.
const PERMANENT: &[&str] = &[
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_PARAMETERS",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.PARAM_LENGTH_LIMIT",
    "InvalidAccessKeyId.NotFound",
    "SignatureDoesNotMatch",
];

#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

impl SmsProvider for AliyunSms {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    fn send<'a>(&'a self, message: &'a NotificationRequested) -> Sending<'a> {
        Box::pin(async move {
            let nonce = uuid::Uuid::now_v7().to_string();
            let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let params = self.signed_params(message, &nonce, &timestamp);
            let url = format!("{}/?{}", self.settings.endpoint.trim_end_matches('/'), canonical_query(&params));
            let response =
                self.http.get(url).send().await.map_err(|e| SendError::Transient(format!("SMS endpoint: {e}")))?;
            let status = response.status();
            let answer: Option<Answer> = response.json().await.ok();
            match answer {
                Some(a) if a.code == "OK" => Ok(()),
                Some(a) if PERMANENT.contains(&a.code.as_str()) => {
                    Err(SendError::Permanent(format!("SMS refused: {} {}", a.code, a.message)))
                }
                Some(a) => Err(SendError::Transient(format!("SMS not sent: {} {}", a.code, a.message))),
                None => Err(SendError::Transient(format!("SMS endpoint answered {status}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Alibaba Cloud's documentation of the signature.
    #[test]
    fn the_signature_is_the_documented_one() {
        let params: BTreeMap<String, String> = [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(sign("GET", &params, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        assert_eq!(percent_encode("a b*~"), "a%20b%2A~");
    }
}
