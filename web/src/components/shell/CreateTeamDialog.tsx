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
import { useTeam } from "@/lib/team";

const CreateTeam = graphql(`
  mutation CreateTeam($name: String!) {
    createTeam(name: $name) {
      id
      name
    }
  }
`);

const schema = z.object({ name: z.string().trim().min(1, "Enter a team name") });
type Values = z.infer<typeof schema>;

export function CreateTeamDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [, createTeam] = useMutation(CreateTeam);
  const { choose, refetch } = useTeam();
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState, reset } = useForm<Values>({
    resolver: zodResolver(schema),
    defaultValues: { name: "" },
  });
  const onSubmit = handleSubmit(async ({ name }) => {
    setErrors([]);
    const result = await createTeam({ name });
    if (result.error || !result.data) {
      setErrors(applyServerErrors(fromCombined(result.error), ["name"], setError));
      return;
    }
    choose(result.data.createTeam.id);
    refetch();
    reset();
    onClose();
  });
  return (
    <Dialog open={open} title="Create team" onClose={onClose}>
      <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
        <ErrorAlert errors={errors} />
        <TextField label="Team name" error={formState.errors.name?.message} {...register("name")} />
        <Button type="submit" disabled={formState.isSubmitting}>
          Create
        </Button>
      </form>
    </Dialog>
  );
}
