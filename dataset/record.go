// Package dataset is the preference data format: one JSON record per line
// (JSONL), a validating reader, an appending writer, a per-user index and the
// manifest that records the train / held-out user split.
package dataset

// FileName is the name of the preference data file in a data folder; the
// manifest beside it lists it under this name.
const FileName = "preferences.jsonl"

// Record is one labelled preference of one user: for Prompt, the user prefers
// Chosen to Rejected. Description is the user's ground-truth description
// (synthetic users only). The remaining fields record where the pair came from.
type Record struct {
	User        string `json:"user"`
	Prompt      string `json:"prompt"`
	Chosen      string `json:"chosen"`
	Rejected    string `json:"rejected"`
	Description string `json:"description,omitempty"`

	// ID is a stable identifier of the record (a content hash when the
	// producer sets none); the writer and resumable stages use it to avoid
	// duplicates.
	ID string `json:"id,omitempty"`
	// Source names what made the record: "stories", a recipe name, "import:<file>", "serve".
	Source string `json:"source,omitempty"`
	// RejectedDescription describes the persona that produced Rejected (or
	// another user's description); the COT template uses it for the
	// rejected completion.
	RejectedDescription string `json:"rejected_description,omitempty"`
	// ChosenScore and RejectedScore are the judge's or reward's scores when known.
	ChosenScore   *float64 `json:"chosen_score,omitempty"`
	RejectedScore *float64 `json:"rejected_score,omitempty"`
	// Meta holds further provenance as strings (model names, seeds, steering persona …).
	Meta map[string]string `json:"meta,omitempty"`
}
