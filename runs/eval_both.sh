#!/bin/bash
# usage: runs/eval_both.sh CKPT OUTDIR  -- full dev + dev-b eval, fp32, 1 thread per shard, 4 shards in parallel
M=$1; O=$2; mkdir -p $O
E=".venv/bin/trackpaint eval"
$E ../shared/data/davis-dev --model $M --threads 1 --precision fp32 --sequences bear,boat,breakdance-flare,bus,car-turn > $O/dev1.log 2>&1 &
$E ../shared/data/davis-dev --model $M --threads 1 --precision fp32 --sequences dog-agility,horsejump-low,lucia,motocross-bumps,soccerball > $O/dev2.log 2>&1 &
$E ../shared/data/davis-devb --model $M --threads 1 --precision fp32 --sequences bmx-bumps,dance-jump,drift-turn,elephant,flamingo,hike,hockey,kite-walk,mallard-fly,mallard-water > $O/devb1.log 2>&1 &
$E ../shared/data/davis-devb --model $M --threads 1 --precision fp32 --sequences motorbike,paragliding,rhino,rollerblade,scooter-gray,stroller,surf,swing,tennis,train > $O/devb2.log 2>&1 &
wait
