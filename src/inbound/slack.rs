//! The follow-up to a Slack button press: the message the button was in,
//! rewritten to say who acted, sent to the interaction's `response_url`
//! with `replace_original` (Slack's way for an app to update the message a
//! press came from).
//!
//! An acknowledgement removes the Acknowledge button and keeps Resolve; a
//! resolution removes the `actions` block. Either appends a context line
//! naming the person (`<@U…>`, so Slack shows their name).

use serde_json::{Value, json};

use super::parse::{ActionKind, SLACK_ACK_ACTION, SLACK_ACTIONS_BLOCK, SlackReply};

/// The `response_url` body that replaces the pressed message after `kind`.
pub fn followup(reply: &SlackReply, kind: ActionKind) -> Value {
    let mut blocks: Vec<Value> = reply
        .message
        .get("blocks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ours = |b: &Value| b.get("block_id").and_then(Value::as_str) == Some(SLACK_ACTIONS_BLOCK);
    match kind {
        ActionKind::Resolve => blocks.retain(|b| !ours(b)),
        ActionKind::Acknowledge => {
            for b in blocks.iter_mut().filter(|b| ours(b)) {
                if let Some(elements) = b.get_mut("elements").and_then(Value::as_array_mut) {
                    elements.retain(|e| {
                        e.get("action_id").and_then(Value::as_str) != Some(SLACK_ACK_ACTION)
                    });
                }
            }
            blocks.retain(|b| {
                !ours(b)
                    || b.get("elements")
                        .and_then(Value::as_array)
                        .is_some_and(|e| !e.is_empty())
            });
        }
    }
    let verb = match kind {
        ActionKind::Acknowledge => "Acknowledged",
        ActionKind::Resolve => "Resolved",
    };
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("{verb} by {} in Slack", reply.mention)},
    ]}));
    let text = reply
        .message
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or(verb);
    json!({ "replace_original": true, "text": text, "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::SLACK_RESOLVE_ACTION;

    fn reply() -> SlackReply {
        let button = |id: &str| json!({"type": "button", "action_id": id, "value": "inc-1"});
        SlackReply {
            response_url: "https://hooks.slack.com/actions/T1/1/x".into(),
            message: json!({"text": "[P1] Incident opened: web is failing", "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "h"}},
                {"type": "actions", "block_id": SLACK_ACTIONS_BLOCK,
                 "elements": [button(SLACK_ACK_ACTION), button(SLACK_RESOLVE_ACTION)]},
                {"type": "actions", "block_id": "someone-elses", "elements": [button(SLACK_ACK_ACTION)]},
            ]}),
            mention: "<@U1>".into(),
        }
    }

    fn action_ids(v: &Value) -> Vec<Vec<String>> {
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .map(|b| {
                b["elements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["action_id"].as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_acknowledgement_keeps_resolve_and_says_who() {
        let v = followup(&reply(), ActionKind::Acknowledge);
        assert_eq!(v["replace_original"], true);
        assert_eq!(v["text"], "[P1] Incident opened: web is failing");
        assert_eq!(
            action_ids(&v),
            [
                vec![SLACK_RESOLVE_ACTION.to_string()],
                vec![SLACK_ACK_ACTION.to_string()]
            ]
        );
        let last = v["blocks"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last["elements"][0]["text"],
            "Acknowledged by <@U1> in Slack"
        );
    }

    #[test]
    fn a_resolution_removes_our_buttons_only() {
        let v = followup(&reply(), ActionKind::Resolve);
        assert_eq!(action_ids(&v), [vec![SLACK_ACK_ACTION.to_string()]]);
        let last = v["blocks"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["elements"][0]["text"], "Resolved by <@U1> in Slack");
        // Acknowledging what only has Resolve left drops nothing else.
        let mut r = reply();
        r.message = v;
        let again = followup(&r, ActionKind::Acknowledge);
        assert_eq!(action_ids(&again), [vec![SLACK_ACK_ACTION.to_string()]]);
    }
}
