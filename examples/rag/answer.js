// A function answering a question from the passages its caller may read.
// POST /api/functions/answer/run {"question": "..."} ->
//   {"prompt": "...", "passages": [...], "answer": "..." | null}
// With CHAT_URL in the server's functions.env (an OpenAI-compatible /chat/completions
// endpoint, allowed by network.allow_hosts), the prompt is sent there (CHAT_KEY,
// CHAT_MODEL); without it, the prompt is returned.
export default async function (req, ctx) {
  const question = String((req.body && req.body.question) || "").trim();
  if (!question) return {error: "give a question"};
  // The same search as POST /api/vectors/notes/search, with the caller's permissions:
  // the question is embedded by the server's embedder, rows are ranked nearest first.
  const passages = await ctx.db.items("notes").nearest({text: question, limit: 3, fields: ["id", "body"]});
  const context = passages.map((p, i) => `[${i + 1}] ${p.body}`).join("\n");
  const prompt = `Answer from these notes only, citing them as [n].\n\n${context}\n\nQuestion: ${question}`;
  let answer = null;
  if (ctx.env.CHAT_URL) {
    const r = await ctx.fetch(ctx.env.CHAT_URL, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": `Bearer ${ctx.env.CHAT_KEY || ""}`},
      body: JSON.stringify({model: ctx.env.CHAT_MODEL || "gpt-4o-mini",
                            messages: [{role: "user", content: prompt}]}),
    });
    answer = (await r.json()).choices[0].message.content;
  }
  return {prompt, passages: passages.map((p) => ({id: p.id, body: p.body, distance: p["$distance"]})), answer};
}
