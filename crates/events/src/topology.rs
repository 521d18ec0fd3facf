//! The reference topology (`docs/reference.md#queue-topology`): for each queue `Q` the `common_dlx`
//! exchange, `Q_delay`, `Q` and the binding, declared in the reference's order with its exact
//! arguments.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::config::{QueueNaming, QueueType};
use crate::error::EventsError;
use crate::messages::QueueName;

/// Declares exchange, delay queue, queue and binding for `queue`, in the reference's order and
/// with its exact arguments (`docs/reference.md#queue-topology`).
pub async fn declare_queue_topology(
    channel: &Channel,
    naming: &QueueNaming,
    queue_type: QueueType,
    queue: QueueName,
) -> Result<(), EventsError> {
    let exchange = naming.dead_letter_exchange();
    let name = naming.queue(queue);
    let delay_name = naming.delay_queue(queue);
    let routing_key = naming.routing_key(queue);
    let declare_error = |what: String| move |source| EventsError::Declare { what, source };

    let mut exchange_args = FieldTable::default();
    exchange_args.insert("x-queue-type".into(), long_string(queue_type.as_str()));
    channel
        .exchange_declare(
            &exchange,
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: false,
                durable: true,
                auto_delete: false,
                internal: false,
                nowait: false,
            },
            exchange_args,
        )
        .await
        .map_err(declare_error(format!("exchange {exchange:?}")))?;

    let durable = QueueDeclareOptions {
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        nowait: false,
    };
    channel
        .queue_declare(&delay_name, durable, queue_args(queue_type, "", &name))
        .await
        .map_err(declare_error(format!("queue {delay_name:?}")))?;
    channel
        .queue_declare(
            &name,
            durable,
            queue_args(queue_type, &exchange, &routing_key),
        )
        .await
        .map_err(declare_error(format!("queue {name:?}")))?;
    channel
        .queue_bind(
            &delay_name,
            &exchange,
            &routing_key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(declare_error(format!(
            "binding of {delay_name:?} to {exchange:?}"
        )))?;
    Ok(())
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

fn queue_args(
    queue_type: QueueType,
    dead_letter_exchange: &str,
    dead_letter_routing_key: &str,
) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string(queue_type.as_str()));
    args.insert(
        "x-dead-letter-exchange".into(),
        long_string(dead_letter_exchange),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        long_string(dead_letter_routing_key),
    );
    args
}
