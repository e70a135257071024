"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { useMutation, useQuery, type CombinedError } from "urql";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Cell, Table } from "@/components/Table";
import { Button, CheckboxGroup, Dialog, ErrorAlert, ShownOnce, TextField } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";
import { WEBHOOK_EVENT_TYPES } from "@/lib/webhook-events";

const WebhookEndpointsQuery = graphql(`
  query WebhookEndpoints($teamId: ID) {
    webhookEndpoints(teamId: $teamId) {
      id
      url
      eventTypes
      enabled
      disabledReason
      createdAt
    }
  }
`);

const CreateWebhookEndpoint = graphql(`
  mutation CreateWebhookEndpoint($teamId: ID!, $url: String!, $eventTypes: [String!]!) {
    createWebhookEndpoint(teamId: $teamId, url: $url, eventTypes: $eventTypes) {
      id
      secret
    }
  }
`);

const DeleteWebhookEndpoint = graphql(`
  mutation DeleteWebhookEndpoint($id: ID!) {
    deleteWebhookEndpoint(id: $id)
  }
`);

const RotateWebhookSecret = graphql(`
  mutation RotateWebhookSecret($id: ID!) {
    rotateWebhookSecret(id: $id) {
      id
      secret
    }
  }
`);

/** The team's webhook endpoints; rendered only for callers holding webhooks:manage. */
export function WebhooksSection({ teamId, onStatus }: { teamId: string; onStatus: (status: string) => void }) {
  const [{ data, error }, reexecute] = useQuery({ query: WebhookEndpointsQuery, variables: { teamId } });
  const [, deleteEndpoint] = useMutation(DeleteWebhookEndpoint);
  const [, rotateSecret] = useMutation(RotateWebhookSecret);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [adding, setAdding] = useState(false);
  // A rotated secret, shown once in its dialog: closing forgets it.
  const [rotated, setRotated] = useState<{ url: string; secret: string } | null>(null);
  const reload = () => reexecute({ requestPolicy: "network-only" });

  const act = async <T,>(answer: Promise<{ error?: CombinedError; data?: T }>): Promise<T | null> => {
    setErrors([]);
    const result = await answer;
    reload();
    if (result.error || !result.data) {
      setErrors(fromCombined(result.error));
      return null;
    }
    return result.data;
  };
  const onDelete = async (id: string, url: string) => {
    if (await act(deleteEndpoint({ id }))) onStatus(`Webhook endpoint ${url} deleted.`);
  };
  const onRotate = async (id: string, url: string) => {
    const answer = await act(rotateSecret({ id }));
    const secret = answer?.rotateWebhookSecret.secret;
    if (secret) setRotated({ url, secret });
  };

  return (
    <section className="flex flex-col gap-3">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h2 className="text-lg font-semibold">Webhooks</h2>
        <Button onClick={() => setAdding(true)}>Add endpoint</Button>
      </div>
      <ErrorAlert errors={[...fromCombined(error), ...errors]} />
      {data ? (
        <Table
          name="Webhooks"
          columns={["URL", "Event types", "State", "Created", "Actions"]}
          empty={data.webhookEndpoints.length ? undefined : "No endpoints yet."}
        >
          {data.webhookEndpoints.map((endpoint) => (
            <tr key={endpoint.id}>
              <Cell header>
                <span className="break-all">{endpoint.url}</span>
              </Cell>
              <Cell>{endpoint.eventTypes.join(", ")}</Cell>
              <Cell>{endpoint.enabled ? "Enabled" : `Disabled${endpoint.disabledReason ? `: ${endpoint.disabledReason}` : ""}`}</Cell>
              <Cell>{new Date(endpoint.createdAt).toLocaleString()}</Cell>
              <Cell>
                <div className="flex flex-wrap gap-2">
                  <Button
                    variant="secondary"
                    aria-label={`Rotate secret ${endpoint.url}`}
                    onClick={() => void onRotate(endpoint.id, endpoint.url)}
                  >
                    Rotate secret
                  </Button>
                  <Button variant="secondary" aria-label={`Delete ${endpoint.url}`} onClick={() => void onDelete(endpoint.id, endpoint.url)}>
                    Delete
                  </Button>
                </div>
              </Cell>
            </tr>
          ))}
        </Table>
      ) : null}
      <AddEndpointDialog open={adding} teamId={teamId} onClose={() => setAdding(false)} onCreated={reload} />
      <Dialog open={rotated !== null} title="New signing secret" onClose={() => setRotated(null)}>
        {rotated ? (
          <ShownOnce
            note={
              <>
                The new secret for <span className="break-all">{rotated.url}</span> is shown only once. The old one keeps signing beside
                it for a while, so receivers can switch over.
              </>
            }
            label="Signing secret"
            value={rotated.secret}
            onDone={() => setRotated(null)}
          />
        ) : null}
      </Dialog>
    </section>
  );
}

const endpointSchema = z.object({
  url: z
    .string()
    .trim()
    .min(1, "Enter the endpoint's URL")
    .refine((value) => /^https?:\/\/[^\s]+$/i.test(value), "Enter an http or https URL"),
  eventTypes: z.array(z.string()).min(1, "Choose at least one event type"),
});
type EndpointValues = z.infer<typeof endpointSchema>;

function AddEndpointDialog({
  open,
  teamId,
  onClose,
  onCreated,
}: {
  open: boolean;
  teamId: string;
  onClose: () => void;
  onCreated: () => void;
}) {
  const [, create] = useMutation(CreateWebhookEndpoint);
  const [secret, setSecret] = useState<string | null>(null);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState, reset } = useForm<EndpointValues>({
    resolver: zodResolver(endpointSchema),
    defaultValues: { url: "", eventTypes: [] },
  });
  const close = () => {
    // The secret is shown once: closing forgets it.
    setSecret(null);
    setErrors([]);
    reset();
    onClose();
  };
  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await create({ ...values, teamId });
    if (result.error || !result.data) {
      setErrors(applyServerErrors(fromCombined(result.error), ["url", "eventTypes"], setError));
      return;
    }
    setSecret(result.data.createWebhookEndpoint.secret ?? null);
    onCreated();
  });
  return (
    <Dialog open={open} title="Add endpoint" onClose={close}>
      {secret ? (
        <ShownOnce
          note={
            <>
              Copy the signing secret now: it is shown only once. Deliveries are signed with it (Standard Webhooks, header
              &quot;webhook-signature&quot;).
            </>
          }
          label="Signing secret"
          value={secret}
          onDone={close}
        />
      ) : (
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <ErrorAlert errors={errors} />
          <TextField label="URL" type="url" inputMode="url" error={formState.errors.url?.message} {...register("url")} />
          <CheckboxGroup
            legend="Event types"
            options={WEBHOOK_EVENT_TYPES}
            error={formState.errors.eventTypes?.message}
            input={register("eventTypes")}
          />
          <Button type="submit" disabled={formState.isSubmitting}>
            Create
          </Button>
        </form>
      )}
    </Dialog>
  );
}
