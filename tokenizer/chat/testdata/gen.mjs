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
for (const model of ["llama3_1", "qwen3"]) {
  const cfg = JSON.parse(fs.readFileSync(path.join(here, "../../hf/testdata", model, "tokenizer_config.json"), "utf8"));
  const name = (t) => (typeof t === "string" ? t : t?.content ?? "");
  const tpl = new Template(cfg.chat_template);
  for (const [i, messages] of convs.entries()) {
    for (const gen of [false, true]) {
      const text = tpl.render({ messages, add_generation_prompt: gen, bos_token: name(cfg.bos_token), eos_token: name(cfg.eos_token) });
      out.push({ model, conversation: i, add_generation_prompt: gen, text });
    }
  }
}
fs.writeFileSync(path.join(here, "golden.json"), JSON.stringify(out, null, 1) + "\n");
console.log(out.length, "renderings");
