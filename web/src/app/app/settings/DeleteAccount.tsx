"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { useMutation } from "urql";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Button, Dialog, ErrorAlert, TextField } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";

const DeleteAccount = graphql(`
  mutation DeleteAccount($password: String!) {
    deleteAccount(password: $password)
  }
`);

const schema = z.object({ password: z.string().min(1, "Enter your password to confirm") });
type Values = z.infer<typeof schema>;

/** "Delete account" (web.md: asks to confirm). The password proves it is the owner
 * asking; once the server erased the account, `onDeleted` logs out to /login. */
export function DeleteAccountSection({ onDeleted }: { onDeleted: () => void | Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const [, erase] = useMutation(DeleteAccount);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState, reset } = useForm<Values>({
    resolver: zodResolver(schema),
    defaultValues: { password: "" },
  });
  const close = () => {
    reset();
    setErrors([]);
    setConfirming(false);
  };
  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await erase(values);
    if (result.error || !result.data?.deleteAccount) {
      setErrors(applyServerErrors(fromCombined(result.error), ["password"], setError));
      return;
    }
    await onDeleted();
  });
  return (
    <section className="flex flex-col gap-3">
      <h2 className="text-lg font-semibold">Delete account</h2>
      <p className="text-sm text-slate-700">
        Your email address and sign-in history become unreadable everywhere at once, every session ends,
        and you leave your teams. This cannot be undone.
      </p>
      <div>
        <Button variant="danger" onClick={() => setConfirming(true)}>
          Delete account
        </Button>
      </div>
      <Dialog open={confirming} title="Delete your account?" onClose={close}>
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <p className="text-sm text-slate-700">
            Confirm with your password. If you are the last owner of a team with other members, make one of
            them an owner first.
          </p>
          <ErrorAlert errors={errors} />
          <TextField
            label="Password"
            type="password"
            autoComplete="current-password"
            error={formState.errors.password?.message}
            {...register("password")}
          />
          <Button type="submit" variant="danger" disabled={formState.isSubmitting}>
            Delete my account
          </Button>
        </form>
      </Dialog>
    </section>
  );
}
