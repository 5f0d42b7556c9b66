// Package stories is the offline default domain: children's stories written
// by the stories260K base model, and programmatic synthetic users whose
// hidden profiles weight story attributes (a favourite name, animal, place or
// object, a mood, a length) and whose reward for a story is an exact function
// of its text. Synthesize samples a shared pool of persona-steered candidate
// continuations per story opening, labels pairs per user by reward margin
// (optionally with Bradley–Terry noise), holds out users with attribute
// combinations or values never liked in training, and writes the data set
// with its reports. README.md records the measurements behind the vocabulary.
package stories

import "strings"

//go:generate go run ./internal/vocabmeasure -n 2000 -out testdata/vocab.tsv

// Category is a kind of story attribute.
type Category string

// The attribute categories. Length is not a word category: it is a
// preference over the number of words of a story.
const (
	Name   Category = "name"
	Animal Category = "animal"
	Place  Category = "place"
	Object Category = "object"
	Mood   Category = "mood"
	Length Category = "length"
)

// Value is one attribute value and the word forms that count as a mention
// (matched as whole words, case-insensitively).
type Value struct {
	Category Category
	Word     string   // canonical form, as used in steering text
	Forms    []string // lowercase whole-word forms, Word first
}

// vocabulary is the attribute values, chosen by measuring stories260K (see
// README.md, "Vocabulary"): each value is written by the model without being
// asked, and steering with it keeps the story coherent; the names and animals
// are mentioned again by ≥ 70% of continuations steered with them.
var vocabulary = []Value{
	{Name, "Tom", []string{"tom"}},
	{Name, "Tim", []string{"tim"}},
	{Name, "Ben", []string{"ben"}},
	{Name, "Sue", []string{"sue"}},
	{Name, "Max", []string{"max"}},
	{Name, "Sam", []string{"sam"}},
	{Name, "Jack", []string{"jack"}},
	{Name, "Amy", []string{"amy"}},

	{Animal, "cat", []string{"cat", "cats"}},
	{Animal, "dog", []string{"dog", "dogs"}},
	{Animal, "bird", []string{"bird", "birds"}},
	{Animal, "bunny", []string{"bunny", "bunnies"}},
	{Animal, "bear", []string{"bear", "bears"}},
	{Animal, "duck", []string{"duck", "ducks"}},
	{Animal, "frog", []string{"frog", "frogs"}},
	{Animal, "mouse", []string{"mouse", "mice"}},

	{Place, "park", []string{"park", "parks"}},
	{Place, "forest", []string{"forest", "forests"}},
	{Place, "pond", []string{"pond", "ponds"}},
	{Place, "farm", []string{"farm", "farms"}},
	{Place, "zoo", []string{"zoo", "zoos"}},
	{Place, "hill", []string{"hill", "hills"}},
	{Place, "beach", []string{"beach", "beaches"}},
	{Place, "river", []string{"river", "rivers"}},

	{Object, "ball", []string{"ball", "balls"}},
	{Object, "car", []string{"car", "cars"}},
	{Object, "cake", []string{"cake", "cakes"}},
	{Object, "book", []string{"book", "books"}},
	{Object, "boat", []string{"boat", "boats"}},
	{Object, "truck", []string{"truck", "trucks"}},
	{Object, "candy", []string{"candy", "candies"}},
	{Object, "flower", []string{"flower", "flowers"}},

	{Mood, "happy", []string{"happy", "happily"}},
	{Mood, "sad", []string{"sad", "sadly"}},
	{Mood, "scared", []string{"scared"}},
	{Mood, "excited", []string{"excited"}},
	{Mood, "angry", []string{"angry", "angrily"}},
}

// key identifies a value: "category:word".
func (v Value) key() string { return string(v.Category) + ":" + v.Word }

// Values returns the attribute values of category c, in a fixed order.
func Values(c Category) []Value {
	var out []Value
	for _, v := range vocabulary {
		if v.Category == c {
			out = append(out, v)
		}
	}
	return out
}

// lookup finds a value by category and canonical word.
func lookup(c Category, word string) (Value, bool) {
	for _, v := range vocabulary {
		if v.Category == c && strings.EqualFold(v.Word, word) {
			return v, true
		}
	}
	return Value{}, false
}

// trainPrompts are the story openings of the training users' pairs. An
// opening ends with "," (the response continues the sentence) or "." (the
// response starts a new sentence). None mentions a vocabulary value.
var trainPrompts = []string{
	"Once upon a time,", "One day,", "One sunny day,", "One morning,", "One night,",
	"Once upon a time, in a small town,", "Once upon a time, in a big city,", "Long ago,",
	"Yesterday,", "Today,", "After lunch,", "After school,", "At the end of the day,",
	"On a cold winter day,", "On a warm summer day,", "In the spring,", "It was a rainy day.",
	"It was a sunny morning.", "The sun was shining.", "The wind was blowing.", "Lily woke up early.",
	"Mom said it was time to go.", "Dad made a big breakfast.", "It was time for bed.", "The rain stopped.",
	"Everyone was at home.", "There was a big tree.", "There was a loud noise.", "It was a special day.",
	"The day was very hot.", "Once there was a little house.", "Lily and her mom went for a walk.",
	"It was snowing outside.", "The stars were bright.", "One day, after a long nap,", "Early in the morning,",
	"Later that day,", "In a small village,", "Not long ago,", "On a bright day,",
}

// heldOutPrompts are openings used only for held-out users' pairs and for
// evaluation; none is a training opening.
var heldOutPrompts = []string{
	"One cloudy day,", "Once upon a time, far away,", "On a quiet evening,", "After dinner,",
	"It was a windy day.", "The sky was blue.", "Grandma came to visit.", "The clock said it was late.",
	"Once upon a time, near a big lake,", "At the start of summer,", "Dad came home early.", "One rainy morning,",
}

// TrainPrompts returns the story openings of training users' pairs.
func TrainPrompts() []string { return append([]string(nil), trainPrompts...) }

// HeldOutPrompts returns the openings reserved for held-out users and
// evaluation.
func HeldOutPrompts() []string { return append([]string(nil), heldOutPrompts...) }

// steerTemplates are the first sentence of a persona's steering text:
// {name}, {animal}, {place} and {object} are the persona's values. Each
// template names two or three of them, so candidates differ along several
// attributes at once.
var steerTemplates = []string{
	"there was a {animal} named {name}.",
	"{name} saw a {animal} at the {place}.",
	"{name} took a {object} to the {place}.",
	"{name} found a {object} in the {place}.",
	"a {animal} played with a {object}.",
	"{name} and a {animal} went to the {place}.",
	"{name} had a {object} and a {animal}.",
	"a {animal} lived near the {place}.",
}

// moodTemplates are the optional second steering sentence.
var moodTemplates = []string{
	"{name} was very {mood}.",
	"The {animal} felt {mood}.",
	"Everyone was {mood}.",
}
