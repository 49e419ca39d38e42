//! Messages in a Confluent-compatible Schema Registry's wire format
//! (Confluent, Redpanda, Apicurio, Karapace): a zero magic byte, the
//! writer's schema id (4 bytes, big-endian), then the record in Avro,
//! Protobuf (after its message indexes) or JSON. The writer's schema is
//! fetched by id and kept in a bounded cache; the record is decoded with
//! the maintained crates (`apache-avro`, `protox` and `prost-reflect`) into
//! its fields by name, nested fields by a dotted path (`reading.pressure`),
//! so that the stream's schema reads them as it reads JSON.
//!
//! A registry that does not answer is not the message's fault: decoding a
//! message whose schema is not cached then fails with
//! [`WireError::RegistryUnavailable`] and the consumer retries it, rather
//! than dead-letter good data.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::schema::{Name, Schema as AvroSchema};
use apache_avro::types::Value as AvroValue;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value as ProtoValue,
};
use serde::{Deserialize, Serialize};
use tidewatch_stream::source::decode::{FieldValue, Fields};

/// How a stream's messages are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// A JSON object, no header.
    #[default]
    Json,
    /// Avro, in the registry's wire format.
    Avro,
    /// Protobuf, in the registry's wire format.
    Protobuf,
    /// JSON, in the registry's wire format (JSON Schema).
    JsonSchema,
}

impl MessageFormat {
    /// As the config writes it.
    pub fn name(self) -> &'static str {
        match self {
            MessageFormat::Json => "json",
            MessageFormat::Avro => "avro",
            MessageFormat::Protobuf => "protobuf",
            MessageFormat::JsonSchema => "json_schema",
        }
    }

    /// The registry's name of the schema type.
    pub fn schema_type(self) -> &'static str {
        match self {
            MessageFormat::Json | MessageFormat::JsonSchema => "JSON",
            MessageFormat::Avro => "AVRO",
            MessageFormat::Protobuf => "PROTOBUF",
        }
    }
}

/// Where the registry is and how to reach it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, `http://` or `https://` (certificates checked against the
    /// system's roots).
    pub url: String,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A bearer token instead of basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// Longest wait for one answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most schemas kept; the oldest fetched goes first.
    #[serde(default = "default_cache_schemas")]
    pub cache_schemas: usize,
}

impl RegistryConfig {
    /// The registry at `url`, without credentials, default limits.
    pub fn at(url: &str) -> RegistryConfig {
        RegistryConfig {
            url: url.to_owned(),
            username: None,
            password: None,
            bearer_token: None,
            timeout_ms: default_timeout_ms(),
            cache_schemas: default_cache_schemas(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_cache_schemas() -> usize {
    1000
}

impl std::fmt::Debug for RegistryConfig {
    /// Credentials are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Why a message in the wire format could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    BadHeader(String),
    #[error("schema id {0} is not in the registry")]
    UnknownSchema(u32),
    #[error("schema id {id}: {message}")]
    BadSchema { id: u32, message: String },
    #[error("{0}")]
    BadRecord(String),
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
}

impl WireError {
    /// The dead-letter reason.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::BadHeader(_) => "bad_header",
            WireError::UnknownSchema(_) => "unknown_schema",
            WireError::BadSchema { .. } => "bad_schema",
            WireError::BadRecord(_) => "bad_record",
            WireError::RegistryUnavailable(_) => "registry_unavailable",
        }
    }
}

/// A schema as the registry returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredSchema {
    pub schema: String,
    /// Absent for Avro.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
}

/// A Confluent-compatible Schema Registry's REST API.
#[derive(Clone)]
pub struct SchemaRegistry {
    config: RegistryConfig,
    agent: ureq::Agent,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl SchemaRegistry {
    pub fn new(config: &RegistryConfig) -> SchemaRegistry {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            .http_status_as_error(false)
            .build()
            .into();
        SchemaRegistry {
            config: config.clone(),
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.url.trim_end_matches('/'))
    }

    fn authorization(&self) -> Option<String> {
        if let Some(token) = &self.config.bearer_token {
            return Some(format!("Bearer {token}"));
        }
        let user = self.config.username.as_ref()?;
        let password = self.config.password.as_deref().unwrap_or_default();
        use base64::Engine;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {credentials}"))
    }

    /// The body of a GET, `None` for a 404.
    fn get(&self, path: &str) -> Result<Option<String>, String> {
        let mut request = self
            .agent
            .get(&self.url(path))
            .header("Accept", CONTENT_TYPE);
        if let Some(auth) = self.authorization() {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(format!("HTTP {status}: {body}")),
        }
    }

    /// The schema registered as `id`; `Ok(None)` when the registry has
    /// none, `Err` when it did not answer.
    pub fn schema(&self, id: u32) -> Result<Option<RegisteredSchema>, String> {
        let Some(body) = self.get(&format!("/schemas/ids/{id}"))? else {
            return Ok(None);
        };
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| format!("schema {id}: {e}"))
    }

    /// Registers `schema` under `subject` (or finds it there); its id.
    pub fn register(
        &self,
        subject: &str,
        format: MessageFormat,
        schema: &str,
    ) -> Result<u32, String> {
        #[derive(Deserialize)]
        struct Registered {
            id: u32,
        }
        let body = serde_json::json!({
            "schema": schema,
            "schemaType": format.schema_type(),
        });
        let mut request = self
            .agent
            .post(&self.url(&format!("/subjects/{subject}/versions")))
            .header("Content-Type", CONTENT_TYPE);
        if let Some(auth) = self.authorization() {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .send(serde_json::to_string(&body).expect("JSON"))
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("registering {subject}: HTTP {status}: {text}"));
        }
        let registered: Registered =
            serde_json::from_str(&text).map_err(|e| format!("registering {subject}: {e}"))?;
        Ok(registered.id)
    }

    /// Whether the registry answers.
    pub fn ping(&self) -> Result<(), String> {
        self.get("/subjects").map(|_| ())
    }
}

/// A writer's schema, parsed once.
enum Parsed {
    Avro {
        schema: Box<AvroSchema>,
        /// Named types, for references inside the schema.
        names: HashMap<Name, AvroSchema>,
    },
    Protobuf(DescriptorPool),
    Json,
}

impl Parsed {
    fn parse(id: u32, registered: &RegisteredSchema) -> Result<Parsed, WireError> {
        let bad = |message: String| WireError::BadSchema { id, message };
        match registered.schema_type.as_deref().unwrap_or("AVRO") {
            "AVRO" => {
                let schema =
                    AvroSchema::parse_str(&registered.schema).map_err(|e| bad(e.to_string()))?;
                let names = apache_avro::schema::ResolvedSchema::try_from(&schema)
                    .map_err(|e| bad(e.to_string()))?
                    .get_names()
                    .iter()
                    .map(|(name, schema)| (name.clone(), (*schema).clone()))
                    .collect();
                Ok(Parsed::Avro {
                    schema: Box::new(schema),
                    names,
                })
            }
            "PROTOBUF" => compile_proto(&registered.schema)
                .map(Parsed::Protobuf)
                .map_err(bad),
            "JSON" => Ok(Parsed::Json),
            other => Err(bad(format!("unknown schema type {other:?}"))),
        }
    }
}

/// The pool of one `.proto` text (imports of Google's well-known types
/// only).
pub fn compile_proto(text: &str) -> Result<DescriptorPool, String> {
    use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
    struct OneFile(String);
    impl FileResolver for OneFile {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            if name == "schema.proto" {
                File::from_source(name, &self.0)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }
    let mut resolver = ChainFileResolver::new();
    resolver.add(OneFile(text.to_owned()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file("schema.proto")
        .map_err(|e| e.to_string())?;
    Ok(compiler.descriptor_pool())
}

/// The message a Protobuf record's indexes name, in `.proto` order.
fn message_at(pool: &DescriptorPool, indexes: &[usize]) -> Option<MessageDescriptor> {
    let file = pool.get_file_by_name("schema.proto")?;
    let (&first, rest) = indexes.split_first()?;
    let mut message = file.messages().nth(first)?;
    for &index in rest {
        let child = message.child_messages().nth(index)?;
        message = child;
    }
    Some(message)
}

/// The header of a wire-format message: its schema id and the rest.
fn split_header(payload: &[u8]) -> Result<(u32, &[u8]), WireError> {
    match payload {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [0, ..] => Err(WireError::BadHeader(format!(
            "{} bytes, shorter than the 5-byte header",
            payload.len()
        ))),
        _ => Err(WireError::BadHeader(format!(
            "magic byte {:#04x}, not 0: not in the schema registry's wire format",
            payload.first().copied().unwrap_or_default()
        ))),
    }
}

/// A zigzag varint, as the Protobuf message indexes are written.
fn read_varint(input: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

fn write_varint(value: i64, out: &mut Vec<u8>) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

/// A record's fields by name, nested ones by dotted path.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DecodedFields {
    fields: Vec<(String, Decoded)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Decoded {
    Text(String),
    Number(f64),
    Null,
}

impl Fields for DecodedFields {
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        let (_, value) = self.fields.iter().find(|(k, _)| k == name)?;
        Some(match value {
            Decoded::Text(s) => FieldValue::Text(s),
            Decoded::Number(n) => FieldValue::Number(*n),
            Decoded::Null => FieldValue::Null,
        })
    }
}

impl DecodedFields {
    fn push(&mut self, path: &str, value: Decoded) {
        self.fields.push((path.to_owned(), value));
    }

    fn avro(
        &mut self,
        path: &str,
        value: &AvroValue,
        schema: &AvroSchema,
        names: &HashMap<Name, AvroSchema>,
    ) {
        let schema = match schema {
            AvroSchema::Ref { name } => names.get(name).unwrap_or(schema),
            other => other,
        };
        match value {
            AvroValue::Record(fields) => {
                let field_schemas: HashMap<&str, &AvroSchema> = match schema {
                    AvroSchema::Record(record) => record
                        .fields
                        .iter()
                        .map(|f| (f.name.as_str(), &f.schema))
                        .collect(),
                    _ => HashMap::new(),
                };
                for (name, value) in fields {
                    let field_schema = field_schemas.get(name.as_str()).copied().unwrap_or(schema);
                    self.avro(&child_path(path, name), value, field_schema, names);
                }
            }
            AvroValue::Union(branch, value) => {
                let branch_schema = match schema {
                    AvroSchema::Union(union) => union.variants().get(*branch as usize),
                    _ => None,
                };
                self.avro(path, value, branch_schema.unwrap_or(schema), names);
            }
            AvroValue::Map(map) => {
                let values = match schema {
                    AvroSchema::Map(map) => map.types.as_ref(),
                    _ => schema,
                };
                for (name, value) in map {
                    self.avro(&child_path(path, name), value, values, names);
                }
            }
            AvroValue::Null => self.push(path, Decoded::Null),
            AvroValue::Boolean(b) => self.push(path, Decoded::Number(f64::from(u8::from(*b)))),
            AvroValue::Int(n) | AvroValue::Date(n) | AvroValue::TimeMillis(n) => {
                self.push(path, Decoded::Number(f64::from(*n)))
            }
            AvroValue::Long(n) | AvroValue::TimeMicros(n) => {
                self.push(path, Decoded::Number(*n as f64))
            }
            // Event times in milliseconds, whatever the unit written.
            AvroValue::TimestampMillis(ms) | AvroValue::LocalTimestampMillis(ms) => {
                self.push(path, Decoded::Number(*ms as f64))
            }
            AvroValue::TimestampMicros(us) | AvroValue::LocalTimestampMicros(us) => {
                self.push(path, Decoded::Number((*us / 1000) as f64))
            }
            AvroValue::TimestampNanos(ns) | AvroValue::LocalTimestampNanos(ns) => {
                self.push(path, Decoded::Number((*ns / 1_000_000) as f64))
            }
            AvroValue::Float(x) => self.push(path, Decoded::Number(f64::from(*x))),
            AvroValue::Double(x) => self.push(path, Decoded::Number(*x)),
            AvroValue::String(s) | AvroValue::Enum(_, s) => {
                self.push(path, Decoded::Text(s.clone()))
            }
            AvroValue::Uuid(u) => self.push(path, Decoded::Text(u.to_string())),
            AvroValue::Decimal(decimal) => {
                let scale = match schema {
                    AvroSchema::Decimal(d) => d.scale,
                    _ => 0,
                };
                let number = <Vec<u8>>::try_from(decimal)
                    .ok()
                    .and_then(|bytes| unscaled(&bytes))
                    .map_or(Decoded::Null, |n| {
                        Decoded::Number(n as f64 / 10f64.powi(scale as i32))
                    });
                self.push(path, number);
            }
            AvroValue::BigDecimal(big) => match big.to_string().parse::<f64>() {
                Ok(n) => self.push(path, Decoded::Number(n)),
                Err(_) => self.push(path, Decoded::Null),
            },
            // Bytes, fixed, arrays and durations are not features.
            _ => self.push(path, Decoded::Text("<not a scalar>".into())),
        }
    }

    fn protobuf(&mut self, path: &str, message: &DynamicMessage) {
        let descriptor = message.descriptor();
        if descriptor.full_name() == "google.protobuf.Timestamp" {
            let get = |name: &str| {
                descriptor
                    .get_field_by_name(name)
                    .map(|f| message.get_field(&f).into_owned())
            };
            let seconds = get("seconds").and_then(|v| v.as_i64()).unwrap_or(0);
            let nanos = get("nanos").and_then(|v| v.as_i32()).unwrap_or(0);
            let ms = seconds as f64 * 1000.0 + f64::from(nanos / 1_000_000);
            self.push(path, Decoded::Number(ms));
            return;
        }
        for field in descriptor.fields() {
            let name = child_path(path, field.name());
            // Unset proto3 scalars read as their defaults, as they were written.
            let value = message.get_field(&field);
            match value.as_ref() {
                ProtoValue::Message(inner) => {
                    if message.has_field(&field) {
                        self.protobuf(&name, inner);
                    } else {
                        self.push(&name, Decoded::Null);
                    }
                }
                ProtoValue::Bool(b) => self.push(&name, Decoded::Number(f64::from(u8::from(*b)))),
                ProtoValue::I32(n) => self.push(&name, Decoded::Number(f64::from(*n))),
                ProtoValue::I64(n) => self.push(&name, Decoded::Number(*n as f64)),
                ProtoValue::U32(n) => self.push(&name, Decoded::Number(f64::from(*n))),
                ProtoValue::U64(n) => self.push(&name, Decoded::Number(*n as f64)),
                ProtoValue::F32(x) => self.push(&name, Decoded::Number(f64::from(*x))),
                ProtoValue::F64(x) => self.push(&name, Decoded::Number(*x)),
                ProtoValue::String(s) => self.push(&name, Decoded::Text(s.clone())),
                ProtoValue::EnumNumber(n) => {
                    let label = field
                        .kind()
                        .as_enum()
                        .and_then(|e| e.get_value(*n))
                        .map_or_else(|| n.to_string(), |v| v.name().to_owned());
                    self.push(&name, Decoded::Text(label));
                }
                _ => self.push(&name, Decoded::Text("<not a scalar>".into())),
            }
        }
    }
}

/// The dotted path of field `name` inside the value at `path`.
fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A two's complement big-endian integer of at most 16 bytes.
fn unscaled(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(full))
}

/// Decodes one stream's wire-format messages, the writers' schemas cached.
pub struct WireDecoder {
    format: MessageFormat,
    registry: SchemaRegistry,
    capacity: usize,
    cache: Mutex<SchemaCache>,
}

#[derive(Default)]
struct SchemaCache {
    schemas: HashMap<u32, Arc<Parsed>>,
    /// Ids in the order they were fetched.
    order: VecDeque<u32>,
}

impl WireDecoder {
    pub fn new(format: MessageFormat, registry: &RegistryConfig) -> WireDecoder {
        WireDecoder {
            format,
            registry: SchemaRegistry::new(registry),
            capacity: registry.cache_schemas.max(1),
            cache: Mutex::new(SchemaCache::default()),
        }
    }

    /// The parsed schema `id`, from the cache or the registry.
    fn schema(&self, id: u32) -> Result<Arc<Parsed>, WireError> {
        if let Some(parsed) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .schemas
            .get(&id)
        {
            return Ok(Arc::clone(parsed));
        }
        let registered = self
            .registry
            .schema(id)
            .map_err(WireError::RegistryUnavailable)?
            .ok_or(WireError::UnknownSchema(id))?;
        let parsed = Arc::new(Parsed::parse(id, &registered)?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.schemas.len() >= self.capacity
            && let Some(oldest) = cache.order.pop_front()
        {
            cache.schemas.remove(&oldest);
        }
        cache.order.push_back(id);
        cache.schemas.insert(id, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// One message's fields.
    pub fn decode(&self, payload: &[u8]) -> Result<DecodedFields, WireError> {
        let (id, mut body) = split_header(payload)?;
        let parsed = self.schema(id)?;
        let mut fields = DecodedFields::default();
        match (self.format, parsed.as_ref()) {
            (MessageFormat::Avro, Parsed::Avro { schema, names }) => {
                let value = apache_avro::from_avro_datum(schema, &mut body, None)
                    .map_err(|e| WireError::BadRecord(format!("not Avro of schema {id}: {e}")))?;
                if !body.is_empty() {
                    return Err(WireError::BadRecord(format!(
                        "{} bytes after the Avro record",
                        body.len()
                    )));
                }
                fields.avro("", &value, schema, names);
            }
            (MessageFormat::Protobuf, Parsed::Protobuf(pool)) => {
                let count = read_varint(&mut body)
                    .ok_or_else(|| WireError::BadHeader("no message indexes".into()))?;
                let indexes: Vec<usize> = if count == 0 {
                    vec![0]
                } else {
                    (0..count)
                        .map(|_| read_varint(&mut body).and_then(|i| usize::try_from(i).ok()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| WireError::BadHeader("bad message indexes".into()))?
                };
                let message = message_at(pool, &indexes).ok_or_else(|| WireError::BadSchema {
                    id,
                    message: format!("no message at indexes {indexes:?}"),
                })?;
                let record = DynamicMessage::decode(message, body).map_err(|e| {
                    WireError::BadRecord(format!("not Protobuf of schema {id}: {e}"))
                })?;
                fields.protobuf("", &record);
            }
            (MessageFormat::JsonSchema, Parsed::Json) => {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| WireError::BadRecord(format!("not JSON: {e}")))?;
                fields.json("", &value);
            }
            (format, _) => {
                return Err(WireError::BadSchema {
                    id,
                    message: format!("not a {} schema", format.schema_type()),
                });
            }
        }
        Ok(fields)
    }
}

impl DecodedFields {
    fn json(&mut self, path: &str, value: &serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                for (name, value) in map {
                    self.json(&child_path(path, name), value);
                }
            }
            Value::Null => self.push(path, Decoded::Null),
            Value::Number(n) => self.push(path, Decoded::Number(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => self.push(path, Decoded::Text(s.clone())),
            Value::Bool(b) => self.push(path, Decoded::Number(f64::from(u8::from(*b)))),
            Value::Array(_) => self.push(path, Decoded::Text("<not a scalar>".into())),
        }
    }
}

/// Writes records in the wire format: what `tidewatch simulate` and the
/// tests produce.
pub struct WireEncoder {
    id: u32,
    writer: Writer,
}

enum Writer {
    Avro(AvroSchema),
    Protobuf(MessageDescriptor),
    Json,
}

impl WireEncoder {
    /// Registers `schema` (Avro JSON, a `.proto` whose first message is
    /// the record, or a JSON Schema) under `subject`.
    pub fn register(
        registry: &RegistryConfig,
        subject: &str,
        format: MessageFormat,
        schema: &str,
    ) -> Result<WireEncoder, String> {
        let writer = match format {
            MessageFormat::Avro => {
                Writer::Avro(AvroSchema::parse_str(schema).map_err(|e| e.to_string())?)
            }
            MessageFormat::Protobuf => {
                let pool = compile_proto(schema)?;
                Writer::Protobuf(message_at(&pool, &[0]).ok_or("the .proto has no message")?)
            }
            MessageFormat::JsonSchema => Writer::Json,
            MessageFormat::Json => return Err("plain JSON needs no registry".into()),
        };
        let id = SchemaRegistry::new(registry).register(subject, format, schema)?;
        Ok(WireEncoder { id, writer })
    }

    /// `record` (a JSON object with the schema's fields) in the wire format.
    pub fn encode(&self, record: &serde_json::Value) -> Result<Vec<u8>, String> {
        let mut out = vec![0];
        out.extend_from_slice(&self.id.to_be_bytes());
        match &self.writer {
            Writer::Avro(schema) => {
                let value = AvroValue::from(record.clone())
                    .resolve(schema)
                    .map_err(|e| e.to_string())?;
                out.extend(apache_avro::to_avro_datum(schema, value).map_err(|e| e.to_string())?);
            }
            Writer::Protobuf(message) => {
                use prost::Message;
                let dynamic = DynamicMessage::deserialize(message.clone(), record)
                    .map_err(|e| e.to_string())?;
                // The first message: the indexes [0], written as one 0.
                write_varint(0, &mut out);
                out.extend(dynamic.encode_to_vec());
            }
            Writer::Json => out.extend(serde_json::to_vec(record).map_err(|e| e.to_string())?),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_varints() {
        assert_eq!(
            split_header(&[0, 0, 0, 1, 2, 9]).unwrap(),
            (258, &[9u8][..])
        );
        assert_eq!(split_header(&[0, 0, 1]).unwrap_err().reason(), "bad_header");
        assert_eq!(
            split_header(b"{\"a\":1}").unwrap_err().reason(),
            "bad_header"
        );
        for n in [0i64, 1, -1, 63, 64, 300, -300] {
            let mut out = Vec::new();
            write_varint(n, &mut out);
            assert_eq!(read_varint(&mut &out[..]), Some(n));
        }
        assert_eq!(unscaled(&[0xff, 0x38]), Some(-200));
        let basic = SchemaRegistry::new(&RegistryConfig {
            username: Some("user".into()),
            password: Some("pass".into()),
            ..RegistryConfig::at("http://registry")
        });
        assert_eq!(basic.authorization().as_deref(), Some("Basic dXNlcjpwYXNz"));
    }

    #[test]
    fn avro_records_flatten_by_dotted_path_with_logical_types() {
        let schema = AvroSchema::parse_str(
            r#"{"type":"record","name":"Reading","fields":[
                {"name":"device","type":"string"},
                {"name":"timestamp","type":{"type":"long","logicalType":"timestamp-micros"}},
                {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
                {"name":"site","type":["null",{"type":"record","name":"Site","fields":[{"name":"level","type":"double"}]}]}
            ]}"#,
        )
        .unwrap();
        let value = AvroValue::Record(vec![
            ("device".into(), AvroValue::String("pump-1".into())),
            (
                "timestamp".into(),
                AvroValue::TimestampMicros(1_700_000_000_123_456),
            ),
            (
                "amount".into(),
                AvroValue::Decimal(apache_avro::Decimal::from(vec![0x30, 0x39])),
            ),
            (
                "site".into(),
                AvroValue::Union(
                    1,
                    Box::new(AvroValue::Record(vec![(
                        "level".into(),
                        AvroValue::Double(2.5),
                    )])),
                ),
            ),
        ]);
        let mut fields = DecodedFields::default();
        fields.avro("", &value, &schema, &HashMap::new());
        assert_eq!(fields.get("device"), Some(FieldValue::Text("pump-1")));
        assert_eq!(
            fields.get("timestamp"),
            Some(FieldValue::Number(1_700_000_000_123.0))
        );
        assert_eq!(fields.get("amount"), Some(FieldValue::Number(123.45)));
        assert_eq!(fields.get("site.level"), Some(FieldValue::Number(2.5)));
    }

    #[test]
    fn protobuf_messages_flatten_with_enums_and_timestamps() {
        let pool = compile_proto(
            r#"syntax = "proto3";
            import "google/protobuf/timestamp.proto";
            message Payment {
              string account = 1;
              google.protobuf.Timestamp time = 2;
              double amount = 3;
              Channel channel = 4;
              enum Channel { ONLINE = 0; POS = 1; }
            }"#,
        )
        .unwrap();
        let message = message_at(&pool, &[0]).unwrap();
        let record = DynamicMessage::deserialize(
            message.clone(),
            &serde_json::json!({"account": "a-1", "time": "2023-11-14T22:13:20.250Z", "channel": "POS"}),
        )
        .unwrap();
        use prost::Message;
        let decoded = DynamicMessage::decode(message, &record.encode_to_vec()[..]).unwrap();
        let mut fields = DecodedFields::default();
        fields.protobuf("", &decoded);
        assert_eq!(fields.get("account"), Some(FieldValue::Text("a-1")));
        assert_eq!(
            fields.get("time"),
            Some(FieldValue::Number(1_700_000_000_250.0))
        );
        // Zero is not written in proto3, and still reads as 0.
        assert_eq!(fields.get("amount"), Some(FieldValue::Number(0.0)));
        assert_eq!(fields.get("channel"), Some(FieldValue::Text("POS")));
    }
}
